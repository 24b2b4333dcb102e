#!/usr/bin/env python3
"""Servers for the service identification lab test, run inside the lab's target namespace.

    service_servers.py --dir DIR --cert CERT --key KEY [--silent A-B] [--ssh A-B]

Serves on every address: 2222 an SSH version line, 2525 an SMTP greeting, 7000 nothing
(reads and discards), 8080 HTTP (HEAD / gets 200 with "Server: LabHTTP/1.0"), 8443 the same
inside TLS with CERT/KEY, and 9100 a printer that writes how many bytes it ever received to
DIR/printer.bytes. --silent and --ssh add a range of ports of either kind (bench/). Prints
"ready" once every port is bound, then serves until killed.
"""
import argparse
import os
import socket
import socketserver
import ssl
import sys
import threading

GREETINGS = {2222: b"SSH-2.0-LabSSH_1.0\r\n", 2525: b"220 lab.internal ESMTP LabMail\r\n"}


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 4096:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
        if not data.startswith(b"HEAD"[: len(data)]):
            break
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--silent", default="")
    parser.add_argument("--ssh", default="")
    args = parser.parse_args()

    def port_range(text):
        if not text:
            return []
        lo, _, hi = text.partition("-")
        return list(range(int(lo), int(hi or lo) + 1))

    silent_ports = set(port_range(args.silent)) | {7000}
    for p in port_range(args.ssh):
        GREETINGS[p] = b"SSH-2.0-LabSSH_1.0\r\n"
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    printer_bytes = [0]
    lock = threading.Lock()
    counter = os.path.join(args.dir, "printer.bytes")
    with open(counter, "w") as f:
        f.write("0\n")

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            port = self.server.server_address[1]
            conn = self.request
            conn.settimeout(10)
            try:
                if port in GREETINGS:
                    conn.sendall(GREETINGS[port])
                    while conn.recv(1024):
                        pass
                elif port in silent_ports:
                    while conn.recv(1024):
                        pass
                elif port in (8080, 8443):
                    if port == 8443:
                        conn = tls.wrap_socket(conn, server_side=True)
                    req = read_request(conn)
                    if req.startswith(b"HEAD "):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nServer: LabHTTP/1.0\r\n\r\n")
                    else:
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                elif port == 9100:
                    while True:
                        chunk = conn.recv(1024)
                        if not chunk:
                            break
                        with lock:
                            printer_bytes[0] += len(chunk)
                            with open(counter, "w") as f:
                                f.write("%d\n" % printer_bytes[0])
            except (OSError, ssl.SSLError):
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    ports = {2222, 2525, 7000, 8080, 8443, 9100} | silent_ports | set(GREETINGS)
    servers = [Server(("0.0.0.0", p), Handler) for p in sorted(ports)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
