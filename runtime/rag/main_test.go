package rag

import (
	"os"
	"sync"
	"testing"

	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
	"github.com/modelc/modelc/runtime/rag/topk"
)

var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgSrv != nil {
		pgSrv.Stop()
	}
	os.Exit(code)
}

// postgresURL starts the package's PostgreSQL once and gives each caller a
// fresh database; missing binaries fail the test.
func postgresURL(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start() })
	if pgErr != nil {
		t.Fatalf("PostgreSQL: %v", pgErr)
	}
	u, err := pgSrv.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func toHits(xs []struct{ id uint64 }) []topk.Hit {
	out := make([]topk.Hit, len(xs))
	for i, x := range xs {
		out[i] = topk.Hit{ID: x.id, Score: float64(len(xs) - i)}
	}
	return out
}
