"""Simulator throughput: how fast it renders and publishes TTS uplinks.

    python benchmarks/simulator.py [--count 60000] [--mqtt-host 127.0.0.1 --mqtt-port 1883]

Renders ``--count`` uplinks of the default scenario (physics, encoders, TTS JSON) into memory,
then publishes them over MQTT as fast as one client can; prints a table. Without a broker
address an embedded one is started. Nobody subscribes, so the broker drops nothing for a slow
reader: this measures the sending side only.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.runner import add_arguments, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=60_000)
    parser.add_argument("--mqtt-host")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    ours = parser.parse_args()
    with contextlib.ExitStack() as stack:
        host, port = ours.mqtt_host, ours.mqtt_port
        if host is None:
            from app.embedded.broker import EmbeddedBroker

            broker = stack.enter_context(EmbeddedBroker())
            host, port = broker.host, broker.port
        simulate = argparse.ArgumentParser()
        add_arguments(simulate)
        args = simulate.parse_args(["--throughput", str(ours.count), "--mqtt-host", host,
                                    "--mqtt-port", str(port)])
        print(f"# simulator throughput, broker {host}:{port}")
        run(args)


if __name__ == "__main__":
    main()
