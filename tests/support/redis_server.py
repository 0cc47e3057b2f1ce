"""A private, real Redis server on a free port, for tests that stop and restart it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from typing import Any

import redis as redis_sync

from tests.support.servers import free_port


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (Debian package redis-server)"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_sync.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis_sync.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def use_private_redis(settings: Any, server: RedisServer, key_prefix: str) -> None:
    """Point this process's layer and history at `server` (a pytest-django `settings`)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": server.url}], "prefix": key_prefix},
        }
    }
    settings.REALTIME = {**settings.REALTIME, "HISTORY_REDIS_URL": server.url, "KEY_PREFIX": key_prefix}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
