package rag

import (
	"os"
	"sync"
	"testing"

	"github.com/modelc/modelc/runtime/rag/internal/pgtest"
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
