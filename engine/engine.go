// Package engine is TheSystem's core: pure Go, no UI. Each subpackage has
// one responsibility (config, secrets, proxy, supervise, vm, sandbox, chat,
// api, compat, doctor). Imports point inward: engine never imports cli,
// menubar or app, which a test in app/ enforces.
package engine
