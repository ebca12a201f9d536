"""`python -m lab.port_holder PORT [--answer STATUS]`: hold a TCP port on 127.0.0.1 (the port-taken fault), or answer
HTTP on it as an engine would, with /health saying STATUS (the port-impostor fault: another program on the port)."""
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def impostor(status: str):
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": status, "service": "not-a-nautilus-engine"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Answer


if __name__ == "__main__":
    port = int(sys.argv[1])
    if "--answer" in sys.argv:
        ThreadingHTTPServer(("127.0.0.1", port), impostor(sys.argv[sys.argv.index("--answer") + 1])).serve_forever()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    while True:
        time.sleep(3600)
