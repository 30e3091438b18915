#!/usr/bin/env python3
"""Render chats with Jinja chat templates the way Hugging Face does.

stdin: a JSON array of {"template": str, "messages": [{"role", "content"}],
"add_generation_prompt": bool, "bos_token": str, "eos_token": str};
stdout: a JSON array of the rendered texts.
"""
import json
import sys

import jinja2

env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
out = []
for req in json.load(sys.stdin):
    out.append(env.from_string(req["template"]).render(
        messages=req["messages"],
        add_generation_prompt=req["add_generation_prompt"],
        bos_token=req["bos_token"],
        eos_token=req["eos_token"],
    ))
json.dump(out, sys.stdout)
