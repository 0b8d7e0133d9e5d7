"""``python -m aurora_sim.data_api``: run a local Data API endpoint until Ctrl-C, printing how to call it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from aurora_sim.data_api.server import RESTART_NOTE, serve


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aurora_sim.data_api", description=__doc__, epilog=RESTART_NOTE)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--allow-plain-http-beyond-loopback", action="store_true",
                        help="let --host be an address beyond loopback (the endpoint speaks plain HTTP: unencrypted)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--flavour", choices=("v1", "v2"), default="v1", help="which service's errors to send")
    parser.add_argument("--auto-pause-s", type=float, default=300.0,
                        help="idle seconds before the cluster pauses (default 300; 0 never pauses)")
    parser.add_argument("--resume-s", type=float, default=None,
                        help="seconds a resume takes (default: drawn from the measured cold starts)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divides the pause delay, resume time, transaction idle limit and 45 s call limit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C (or SIGTERM); returns the exit status."""
    args = _arguments(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(host=args.host, port=args.port, flavour=args.flavour, auto_pause_s=args.auto_pause_s or None,
               resume_s=args.resume_s, time_scale=args.time_scale,
               allow_plain_http_beyond_loopback=args.allow_plain_http_beyond_loopback) as endpoint:
        print(f"Data API ({endpoint.flavour}) listening at {endpoint.url}")
        print(f"resource ARN  {endpoint.resource_arn}")
        print(f"secret ARN    {endpoint.secret_arn}")
        print(f"database      {endpoint.database}")
        print(RESTART_NOTE)
        print("\nIn another shell:")
        print("\n".join(endpoint.export_lines()))
        print(endpoint.cli_command())
        print(f"\nPID {os.getpid()} (Ctrl-C to stop)", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
