"""The images' HEALTHCHECK: exit 0 when tabserve's ``/ready`` answers 200 on its configured port.

Standard library only, and no tabserve import, so a check costs ~20 ms of interpreter start, not
a settings parse. The port is ``TABSERVE_PORT`` (what the image sets and `tabserve serve` reads);
give the port that way, not as ``--port``, and the check follows it.
"""

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("TABSERVE_PORT", "8000")
    url = f"http://127.0.0.1:{port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # refused while starting, 503 (HTTPError) until the model is loaded
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
