"""The traffic lab victim's web server: static files from a directory
(HTTP/1.1, so clients may keep a connection alive) and a login form,
`POST /login` (user=...&pass=...), that answers 200 with "invalid login"
or 302 to /docs/ when the pair matches LAB_LOGIN ("user:password").

    python3 victim_http.py ADDRESS PORT DIRECTORY
"""

import http.server
import os
import sys
import urllib.parse

MAX_BODY = 65536


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        if self.path.split("?")[0] != "/login":
            self.send_error(404)
            return
        try:
            length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY)
        except ValueError:
            self.send_error(400)
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("latin-1"))
        pair = form.get("user", [""])[0] + ":" + form.get("pass", [""])[0]
        if pair == os.environ.get("LAB_LOGIN", ""):
            self.send_response(302)
            self.send_header("Location", "/docs/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><body><p>invalid login</p><form method=post action=/login>" \
               b"<input name=user><input name=pass type=password></form></body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s - - [%s] %s\n" % (self.address_string(), self.log_date_time_string(), fmt % args))


def main():
    address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.chdir(directory)
    server = http.server.ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
