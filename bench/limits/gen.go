package limits

//go:generate go run ./internal/gen
