#!/usr/bin/env python3
"""Encode strings with Google's sentencepiece, for comparison with the Go tokenizer.

Usage: spm_encode.py MODEL [--keep-whitespace] < strings.json > ids.json
stdin holds a JSON array of strings; stdout gets a JSON array of id lists
(no BOS/EOS). --keep-whitespace clears the model's remove_extra_whitespaces
normalizer flag (llama2.c's run.c never collapses or strips spaces), editing
the serialized ModelProto by hand so no protobuf module is needed.
"""
import json
import sys

import sentencepiece as spm


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def put_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(buf):
    """Yield (field number, wire type, raw bytes of the whole field)."""
    i = 0
    while i < len(buf):
        start = i
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = varint(buf, i)
        elif wt == 1:
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            i += n
        elif wt == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, wt, buf[start:i]


def payload(raw):
    _, i = varint(raw, 0)
    n, i = varint(raw, i)
    return raw[i:i + n]


def keep_whitespace(model):
    # ModelProto field 3 is normalizer_spec; its field 4 is remove_extra_whitespaces.
    out = bytearray()
    for num, wt, raw in fields(model):
        if num == 3 and wt == 2:
            inner = bytearray()
            for n2, _, r2 in fields(payload(raw)):
                if n2 != 4:
                    inner += r2
            inner += bytes([4 << 3 | 0, 0])
            out += put_varint(3 << 3 | 2) + put_varint(len(inner)) + inner
        else:
            out += raw
    return bytes(out)


def main():
    args = sys.argv[1:]
    keep = "--keep-whitespace" in args
    args = [a for a in args if a != "--keep-whitespace"]
    if len(args) != 1:
        sys.exit(__doc__)
    model = open(args[0], "rb").read()
    if keep:
        model = keep_whitespace(model)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(model)
    texts = json.load(sys.stdin)
    json.dump([sp.encode(t) for t in texts], sys.stdout)


if __name__ == "__main__":
    main()
