"""A static web server for a generator's built site (check --links tests): Python's own
file server (HEAD, GET, index.html, and a 301 from /dir to /dir/), except that it refuses
HEAD (405) under /nohead/, as some servers do. Prints "READY <port>" on 127.0.0.1."""
import argparse
import functools
import http.server
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    args = parser.parse_args()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_HEAD(self):
            if self.path.startswith("/nohead/"):
                self.send_error(405)
                return
            super().do_HEAD()

    handler = functools.partial(Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
