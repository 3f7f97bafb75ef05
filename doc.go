// Package natter is the root of Natter, a self-hosted chat backend on NATS
// JetStream. It holds no code of its own: its tests check the rules that
// keep the repository's layout honest (every package documents its role;
// packages import only what their layer may), and the packages below hold
// the product. README.md says how to run and test it; docs/architecture.md
// draws how the parts fit.
package natter
