package e2e

import (
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/modelc/modelc/generated/llama110m"
	"github.com/modelc/modelc/generated/llama15m"
	"github.com/modelc/modelc/generated/stories260k"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/spec"
)

// A compiled package's Spec() is the whole spec it was compiled from, training
// defaults included.
func TestCompiledSpecIsTheSpec(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	for name, compiled := range map[string]*model.Spec{
		"stories260k": stories260k.Spec(), "llama15m": llama15m.Spec(), "llama110m": llama110m.Spec(),
	} {
		want, err := spec.Load(filepath.Join(root, "generated", name, "model.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(compiled, want) {
			t.Errorf("%s: compiled spec\n%+v\ndiffers from model.yaml's\n%+v", name, *compiled, *want)
		}
	}
}
