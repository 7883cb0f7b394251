package pubsub

// The generated code in proto/ is committed, so building needs no protoc.
// To regenerate (protoc 3.21+, protoc-gen-go v1.36.12, protoc-gen-go-grpc v1.6.2 on PATH):
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative proto/pubsub_api.proto
