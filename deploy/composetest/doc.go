// Package composetest checks the deployment files at the root of the orgsync
// repository without a Docker engine: docker-compose.yml and .env.example
// (loaded with compose-go, the parser docker compose itself uses), the
// Dockerfile, deploy/prometheus (rulefmt and the PromQL parser, as promtool
// uses them) and deploy/grafana. It cross-checks them against the code: every
// ORGSYNC_* variable a container gets must be a flag of the command it runs
// (read from the binaries' own -h output), and every metric a rule or a
// dashboard panel uses must be one the code exports.
//
// It is a separate module so that the main module's go.mod stays small:
//
//	cd deploy/composetest && go vet ./... && go test ./...
package composetest
