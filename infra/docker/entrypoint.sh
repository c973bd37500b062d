#!/bin/sh
# Entry point of the readmit image: the first argument names the role this container plays.
# Every role reads its configuration from READMIT_* environment variables (readmit_core/settings.py);
# nothing here invents settings of its own.
set -eu

usage() {
  cat <<'TXT'
usage: readmit-entrypoint ROLE [ARGS...]

long-running roles
  ingest            FHIR R4 ingest API (uvicorn) on READMIT_INGEST_HOST:READMIT_INGEST_PORT
  scorer            one scorer of the consumer group; /metrics on READMIT_SCORER_METRICS_PORT
  explainer         one explainer: factors for scores published factors_pending (risk.scored)
  web               web app (Daphne ASGI) on READMIT_WEB_HOST:READMIT_WEB_PORT
  alerts-consumer   the web app's alert feed (consumes risk.scored)

one-shot roles
  migrate [--seed-demo]   Django migrations (then demo wards/users/key when asked)
  train [--if-missing] [ARGS]
                    `readmit train ARGS` into READMIT_MODEL_DIR; --if-missing does nothing
                    when the registry already has a champion
  readmit ARGS      any readmit CLI command, e.g. `readmit models promote VERSION`, `readmit lag`
  health            the container health check of the running role
TXT
}

role="${1:-}"
[ $# -gt 0 ] && shift

# Secrets mounted as files (docker compose `secrets:`, Kubernetes Secret volumes) named
# readmit_<field> become READMIT_<FIELD>: /run/secrets/readmit_metrics_token ->
# READMIT_METRICS_TOKEN. A file is given only to the containers that need it (the model
# signing key to training alone), and one file can feed both a role and Prometheus.
for secret in /run/secrets/readmit_*; do
  [ -f "$secret" ] || continue
  name=$(basename "$secret" | tr '[:lower:]' '[:upper:]')
  value=$(cat "$secret")
  export "$name=$value"
done

# The health check runs as a separate process; it learns the role from this file.
remember_role() {
  printf '%s\n' "$1" > "${READMIT_STATE_DIR:-/var/lib/readmit}/role" 2>/dev/null || true
}

case "$role" in
  ingest)
    remember_role ingest
    exec readmit ingest "$@"
    ;;
  scorer)
    remember_role scorer
    exec readmit scorer "$@"
    ;;
  explainer)
    remember_role explainer
    exec readmit explainer "$@"
    ;;
  web)
    remember_role web
    # No --proxy-headers: daphne would take the client address from the *leftmost*
    # X-Forwarded-For entry, which the client writes, and a password guesser rotating it
    # would never be locked out. The login lockout reads the proxy's entry itself
    # (READMIT_LOGIN_PROXY_HOPS); HTTPS is told by X-Forwarded-Proto (Django settings).
    exec daphne -b "${READMIT_WEB_HOST:-0.0.0.0}" -p "${READMIT_WEB_PORT:-8000}" \
      "$@" alerts_web.asgi:application
    ;;
  alerts-consumer)
    remember_role alerts-consumer
    exec python -m alerts_web consume_scores "$@"
    ;;
  migrate)
    remember_role oneshot
    seed=no
    if [ "${1:-}" = "--seed-demo" ]; then seed=yes; shift; fi
    python -m alerts_web migrate --noinput "$@"
    if [ "$seed" = yes ]; then
      # Prints the demo passwords and API key once (see `docker compose logs migrate`).
      python -m alerts_web seed_demo
    fi
    ;;
  train)
    remember_role oneshot
    if [ "${1:-}" = "--if-missing" ]; then
      shift
      # The registry's champion pointer (model_store/registry.py): one line, the version.
      if [ -s "${READMIT_MODEL_DIR:-/models}/champion" ]; then
        echo "champion $(cat "${READMIT_MODEL_DIR:-/models}/champion") present; not training"
        exit 0
      fi
    fi
    exec readmit train "$@"
    ;;
  readmit)
    remember_role oneshot
    exec readmit "$@"
    ;;
  health)
    exec python /usr/local/lib/readmit/healthcheck.py "$@"
    ;;
  -h|--help|help|"")
    usage
    ;;
  *)
    echo "unknown role: $role" >&2
    usage >&2
    exit 64
    ;;
esac
