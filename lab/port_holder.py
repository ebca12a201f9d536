"""`python -m lab.port_holder PORT`: hold a TCP port on 127.0.0.1, the lab's port-taken fault."""
import socket
import sys
import time

if __name__ == "__main__":
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen()
    while True:
        time.sleep(3600)
