#!/usr/bin/env bash
# Regenerates the Swift message code of every .proto under schema/ into
# Sources/BillingProto/. The generated files are committed, so a build of the
# package needs neither protoc nor the plugin; rerun this after editing a
# .proto and commit the .proto and the .pb.swift files together.
#
# Requirements:
#   - protoc (Debian: apt-get install protobuf-compiler), which also provides
#     the well-known types (google/protobuf/*.proto) in /usr/include.
#   - protoc-gen-swift from swift-protobuf 1.39.0, the version the package
#     depends on (Package.resolved). Build it once (takes ~1-10 min):
#       git clone https://github.com/apple/swift-protobuf && cd swift-protobuf \
#         && git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#     then point PROTOC_GEN_SWIFT at .build/release/protoc-gen-swift, or put
#     that directory on PATH.
#
# Usage: schema/generate.sh            (from anywhere)
#        PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift schema/generate.sh
#
# Only message code is generated (no grpc-swift service code): the server
# routes /billing.v1.<Service>/<Method> paths itself.
set -euo pipefail

SCHEMA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$SCHEMA_DIR")"
OUT_DIR="$ROOT_DIR/Sources/BillingProto"
EXPECTED_PLUGIN_VERSION="1.39.0"

PROTOC="${PROTOC:-protoc}"
if ! command -v "$PROTOC" >/dev/null 2>&1; then
  echo "error: protoc not found (apt-get install protobuf-compiler, or set PROTOC)" >&2
  exit 1
fi

PLUGIN="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
if [[ -z "$PLUGIN" || ! -x "$PLUGIN" ]]; then
  echo "error: protoc-gen-swift not found: set PROTOC_GEN_SWIFT or put it on PATH" >&2
  echo "       (see the header of $0 for how to build it)" >&2
  exit 1
fi
PLUGIN_VERSION="$("$PLUGIN" --version 2>/dev/null | awk '{print $2}')"
if [[ "$PLUGIN_VERSION" != "$EXPECTED_PLUGIN_VERSION" ]]; then
  echo "error: $PLUGIN is version '$PLUGIN_VERSION', expected $EXPECTED_PLUGIN_VERSION" >&2
  echo "       (it must match the swift-protobuf runtime in Package.resolved)" >&2
  exit 1
fi

# Well-known types (google/protobuf/any.proto, duration.proto): protoc's own
# include directory, found next to the binary or in /usr/include.
WKT_INCLUDE=""
for dir in "$(dirname "$(command -v "$PROTOC")")/../include" /usr/include /usr/local/include; do
  if [[ -f "$dir/google/protobuf/any.proto" ]]; then WKT_INCLUDE="$dir"; break; fi
done
if [[ -z "$WKT_INCLUDE" ]]; then
  echo "error: google/protobuf/any.proto not found (install protobuf-compiler's includes)" >&2
  exit 1
fi

cd "$SCHEMA_DIR"
mapfile -t PROTOS < <(find billing google grpc -name '*.proto' | LC_ALL=C sort)

# Replace the previous output: remove generated files (and the placeholder)
# so a deleted .proto leaves nothing behind. Hand-written files are left alone.
find "$OUT_DIR" -maxdepth 1 -name '*.pb.swift' -delete
rm -f "$OUT_DIR/Placeholder.swift"

"$PROTOC" \
  --plugin=protoc-gen-swift="$PLUGIN" \
  -I "$SCHEMA_DIR" -I "$WKT_INCLUDE" \
  --swift_out="$OUT_DIR" \
  --swift_opt=Visibility=Public \
  --swift_opt=FileNaming=PathToUnderscores \
  "${PROTOS[@]}"

echo "generated $(find "$OUT_DIR" -maxdepth 1 -name '*.pb.swift' | wc -l) files in $OUT_DIR:"
for p in "${PROTOS[@]}"; do echo "  $p"; done
