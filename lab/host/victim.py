"""The host lab's victim: a small web application with a command-injection
flaw (``/ping?host=`` is passed to a shell), and the everyday work a
service does (listing its files, telling the time, a health check; an
operator's status report, ``/report``, that the lab's workloads never ask
for: a benign behaviour its baseline has not seen).

Serves on 127.0.0.1 (or the address given fourth: lab/demo.sh gives its
lab victim's private address). Run it in the lab's mount namespace
(lab/host.sh), where the persistence paths are scratch file systems.
"""

import http.server
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = sys.argv[2] if len(sys.argv) > 2 else "/srv/daisi-lab"
# The access log, in the Combined Log Format nginx and Apache write.
ACCESS = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else None
ACCESS_LOCK = threading.Lock()


class App(http.server.BaseHTTPRequestHandler):
    def reply(self, body: bytes, code: int = 200) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if ACCESS is not None:
            line = '%s - - [%s] "%s" %d %d "-" "%s"\n' % (
                self.client_address[0],
                time.strftime("%d/%b/%Y:%H:%M:%S %z"),
                self.requestline.replace('"', "%22"),
                code,
                len(body),
                (self.headers.get("User-Agent") or "-").replace('"', "%22"),
            )
            with ACCESS_LOCK:
                ACCESS.write(line)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/":
            self.reply(b"ok\n")
        elif url.path == "/list":
            out = subprocess.run(["ls", ROOT], capture_output=True).stdout
            self.reply(out)
        elif url.path == "/time":
            out = subprocess.run(["date", "-u"], capture_output=True).stdout
            self.reply(out)
        elif url.path == "/page":
            name = q.get("name", ["index.html"])[0].replace("/", "")
            try:
                with open(f"{ROOT}/{name}", "rb") as f:
                    self.reply(f.read())
            except OSError:
                self.reply(b"not found\n", 404)
        elif url.path == "/report":
            out = subprocess.run(["uptime"], capture_output=True).stdout
            self.reply(out)
        elif url.path == "/ping":
            # The flaw: the parameter goes to a shell unquoted.
            host = q.get("host", ["localhost"])[0]
            out = subprocess.run(
                f"echo pinging {host}", shell=True, capture_output=True, timeout=20
            ).stdout
            self.reply(out)
        else:
            self.reply(b"no such page\n", 404)

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1])
    # The address to serve on (127.0.0.1; the demo gives the lab victim's
    # private address, reachable only inside the lab's namespaces).
    bind = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
    http.server.ThreadingHTTPServer((bind, port), App).serve_forever()
