//go:build tools

// Package tools records the commands this wrapper module builds, so `go mod tidy` keeps them.
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/cli"
	_ "github.com/Shopify/toxiproxy/v2/cmd/server"
)
