"""`python -m lab simulator`: serve the contract-faithful video API simulator until stopped."""

from __future__ import annotations

import argparse
import signal
import threading

from lab.cli.usage import fail, finite_positive, int_between, json_usage_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulator", help="serve the simulated /v1/videos API (real MP4s) until stopped")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int_between(0, 65535), default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--time-scale", type=finite_positive, default=1.0, help="multiply every delay by this (default 1.0)")
    parser.add_argument("--keys", default=None, help="comma-separated accepted keys (default: any non-empty key)")
    parser.add_argument("--faults", default="", help="NAME=P,... e.g. content_not_ready=0.5,rate_429=0.1")
    parser.add_argument("--fault-seed", type=int_between(-(2**63), 2**63 - 1), default=None, help="seed for repeatable fault draws")
    parser.add_argument("--render-cache", default=None, help="directory for rendered MP4s (default: DATA_DIR/renders)")
    parser.set_defaults(func=run)
    json_usage_errors(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lab.simulator.server import SimConfig, SimulatorServer

    try:
        faults = SimConfig.parse_faults(args.faults)
        keys = tuple(k.strip() for k in args.keys.split(",") if k.strip()) if args.keys else None
        render_cache = Path(args.render_cache) if args.render_cache else _data_dir_renders()
        config = SimConfig(
            time_scale=args.time_scale, keys=keys, faults=faults, fault_seed=args.fault_seed, render_cache=render_cache
        )
        server = SimulatorServer(config, host=args.host, port=args.port)
    except OSError as exc:
        return fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except (ValueError, OverflowError) as exc:
        return fail(str(exc))
    server.start()
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly under process managers too
    print(f"simulator serving at {server.base_url}  (ledger: {server.root_url}/_sim/ledger; Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0



def _interrupt(signum, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # one stop is enough; a repeat must not break the shutdown
    raise KeyboardInterrupt


def _data_dir_renders():
    """DATA_DIR/renders from the lab's settings, or None (the simulator's own default) if they can't load."""
    try:
        from lab.datadir import DataDir
        from lab.settings import load_settings

        return DataDir(load_settings().data_dir).renders
    except Exception:  # bad settings should not stop a local simulator; the default cache works
        return None
