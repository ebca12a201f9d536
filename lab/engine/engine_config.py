"""The engine's settings, read once from the environment (see lab/README.md), and the constants its parts share.

Every module of the engine imports its names from here, so there is one logger, one NAME and one FLAVOUR.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

NAME = os.environ.get("ENGINE_NAME", "analytics")
PORT = int(os.environ.get("ENGINE_PORT", "8100"))
HOST = os.environ.get("ENGINE_HOST", "0.0.0.0")  # not set in the lab; a test outside Docker binds loopback
FLAVOUR = os.environ.get("ENGINE_FLAVOUR", "guide")
# Seconds before the engine listens, as a real engine loading its models or caches: `lab redeploy --start-delay`.
START_DELAY_S = float(os.environ.get("ENGINE_START_DELAY_S") or 0)
STATE_DIR = Path(os.environ.get("LAB_STATE_DIR", "/lab-state"))
REDIS = {"host": os.environ.get("REDIS_HOST", "redis"), "port": int(os.environ.get("REDIS_PORT", "6379"))}
# The password stays in this dict and is handed to libpq only: never logged, never served.
POSTGRES = {"host": os.environ.get("POSTGRES_HOST", "postgres"), "port": int(os.environ.get("POSTGRES_PORT", "5432")),
            "dbname": os.environ.get("POSTGRES_DB", "nautilus"), "user": os.environ.get("POSTGRES_USER", "nautilus"),
            "password": os.environ.get("POSTGRES_PASSWORD", "")}

SERVICE = "backend" if NAME == "backend" else f"{NAME}-engine"
CLIENT_NAME = f"nautilus-{SERVICE}"
CRASH_MARKER = STATE_DIR / f"crash-{NAME}"
FAULT_KINDS = ("unhealthy", "degraded", "slow", "bus-down", "bus-lie", "idle-bus", "error-burst", "known-error", "slow-log",
               "leak", "cpu", "hang", "crash-loop", "exit", "oom", "hostile", "trickle", "hostile-body", "conn-churn",
               "ws-stall", "no-data", "noisy-calculate")
# hostile-body modes: what /health (or, for bad-metrics, /metrics) answers instead; long-log logs one line of 1 MB.
HOSTILE_MODES = ("not-json", "huge", "nested", "wrong-types", "bad-utf8", "bad-metrics", "long-log")
# The hostile fault: text a report must show as text (markup, terminal escapes) beside secrets it must never show.
HOSTILE_TEXT = "<script>document.title='owned'</script><b>bold?</b> \x1b[31mred?\x1b[0m"
# The troubleshooting guide's knowledge base: error texts the known-error fault can log.
KNOWN_ERRORS = ("MessageBus connection failed", "Database connection timeout", "Memory limit exceeded",
                "Health check timeout", "No space left on device", "Port already in use")
SLOW_OPERATIONS = ("order book rebuild", "risk limit recalculation", "factor matrix refresh",
                   "portfolio snapshot write", "market data replay")
OOM_CHUNK_MB, OOM_CAP_MB = 16, 4096  # the oom fault stops (and logs) at the cap if no limit killed it
BEAT_S, BUS_FRESH_S, DB_BEAT_S, DB_RETRY_S = 2.0, 5.0, 10.0, 5.0
WS_STATS_KEY = "nautilus:websocket:stats"
LIMITS = {"position_notional": 250_000.0, "portfolio_value": 5_000_000.0}
SCHEMA_LOCK = 0x6E617574  # any constant shared by every engine; "naut"
SCHEMA = ("CREATE TABLE IF NOT EXISTS engine_heartbeats (engine text, at timestamptz DEFAULT now())",
          "CREATE TABLE IF NOT EXISTS analytics_calculations "
          "(portfolio text, duration_ms double precision, at timestamptz DEFAULT now())",
          "CREATE TABLE IF NOT EXISTS risk_checks (portfolio text, breaches int, at timestamptz DEFAULT now())")
# The cpu fault's burner polls its parent so it never outlives the engine, even after a SIGKILL.
CPU_BURNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    sum(range(20000))\n"
HARMLESS_WARNINGS = ("Reference data cache refresh took {ms} ms (budget 1000 ms)",
                     "Heartbeat round trip {ms} ms above the 100 ms target",
                     "Market data snapshot {ms} ms behind schedule; catching up")

log = logging.getLogger(SERVICE)


def setup_logging() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # docker logs must see each line at once
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
