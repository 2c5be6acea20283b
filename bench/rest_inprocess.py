"""GETs run in-process through Django's test Client, one at a time: the
application's own cost per request, without a server or a network.

    python -m bench.rest_inprocess TOKEN SECONDS PATH...   # with the server's environment

Prints ``{path: [seconds per request, ...]}`` as JSON.
"""

import json
import sys
import time

import django


def main() -> None:
    django.setup()
    from django.test import Client

    token, seconds, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="127.0.0.1")
    timings: dict[str, list[float]] = {}
    for path in paths:
        assert client.get(path).status_code == 200, path  # warm: imports, connection, caches
        times = timings[path] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = client.get(path).status_code
            times.append(time.perf_counter() - started)
            assert status == 200, (path, status)
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
