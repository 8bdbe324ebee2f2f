#!/usr/bin/env bash
# Enforces the dependency rule of docs/architecture.md with `cargo tree`:
#   domain   -> nothing of ours, and no I/O or runtime crate anywhere in its tree;
#   ports    -> domain only, and no I/O or runtime crate anywhere in its tree;
#   contexts -> ports, domain (never an adapter);
#   adapters -> ports, domain, provider-kit (never another adapter or a context).
# The app, the facade and the testkit may depend on anything of ours.
# Exit 1 names every violation.
set -euo pipefail
cd "$(dirname "$0")/.."

# Crates that do I/O or bring a runtime: never in the domain's or the ports' tree.
io_crates='^(tokio|tokio-[a-z-]+|mio|sqlx|sqlx-[a-z-]+|reqwest|hyper|hyper-util|polars|polars-[a-z-]+|duckdb|libduckdb-sys|arrow|arrow-[a-z-]+|parquet|object_store|rusqlite|libsqlite3-sys) '

violations=0
fail() { echo "dependency rule violated: $*" >&2; violations=$((violations + 1)); }

# "name path" for every workspace member.
members=$(cargo tree --workspace --depth 0 --prefix none -e normal --quiet \
  | sed -n 's/^\([^ ]*\) v[^ ]* (\(.*\))$/\1 \2/p' | sort -u)

layer_of() { # name path
  case "$1" in
    marketpipe-domain) echo domain ;;
    marketpipe-ports) echo ports ;;
    marketpipe-ingestion | marketpipe-aggregation | marketpipe-validation | marketpipe-lake | marketpipe-universe | marketpipe-telemetry) echo context ;;
    *)
      case "$2" in
        */crates/adapters/*) echo adapter ;;
        *) echo free ;;
      esac
      ;;
  esac
}

direct_internal_deps() { # name
  cargo tree -p "$1" -e normal --depth 1 --prefix none --quiet \
    | tail -n +2 | awk '{print $1}' | grep -E '^(marketpipe|mp)(-|$)' | sort -u || true
}

while read -r name path; do
  [ -n "$name" ] || continue
  layer=$(layer_of "$name" "$path")
  deps=$(direct_internal_deps "$name")
  case "$layer" in
    domain | ports)
      bad=$(cargo tree -p "$name" -e normal --prefix none --quiet | grep -E "$io_crates" | awk '{print $1}' | sort -u || true)
      [ -z "$bad" ] || fail "$name ($layer) pulls in I/O crates: $(echo $bad)"
      ;;
  esac
  for dep in $deps; do
    dep_layer=$(layer_of "$dep" "$(awk -v n="$dep" '$1 == n {print $2}' <<<"$members")")
    case "$layer:$dep_layer" in
      domain:*) fail "$name (domain) depends on $dep; the domain depends on nothing of ours" ;;
      ports:domain) ;;
      ports:*) fail "$name (ports) depends on $dep; ports depend on the domain only" ;;
      context:domain | context:ports) ;;
      context:*) fail "$name (context) depends on $dep ($dep_layer); contexts use ports, not adapters" ;;
      adapter:domain | adapter:ports) ;;
      adapter:adapter) [ "$dep" = marketpipe-provider-kit ] || fail "$name (adapter) depends on adapter $dep" ;;
      adapter:*) fail "$name (adapter) depends on $dep ($dep_layer)" ;;
    esac
  done
done <<<"$members"

if [ "$violations" -gt 0 ]; then
  echo "$violations dependency-rule violation(s); see docs/architecture.md" >&2
  exit 1
fi
echo "dependency rule holds for $(wc -l <<<"$members") workspace crates"
