"""A small HTTP server for the feed tests: serves the files of --root, with an ETag
(the content's SHA-256) and Last-Modified, answers 304 to a matching If-None-Match or a
fresh If-Modified-Since, and logs every request to --root/../requests.jsonl.
Prints "READY <port>" when listening on 127.0.0.1."""
import argparse
import email.utils
import hashlib
import http.server
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    log_path = os.path.join(os.path.dirname(root), "requests.jsonl")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            path = os.path.join(root, self.path.lstrip("/").split("?")[0])
            entry = {
                "path": self.path,
                "if_none_match": self.headers.get("If-None-Match"),
                "if_modified_since": self.headers.get("If-Modified-Since"),
                "user_agent": self.headers.get("User-Agent"),
            }
            if not os.path.isfile(path):
                status, body, headers = 404, b"not found", {}
            else:
                with open(path, "rb") as f:
                    body = f.read()
                etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
                modified = email.utils.formatdate(os.path.getmtime(path), usegmt=True)
                headers = {"ETag": etag, "Last-Modified": modified}
                if self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                else:
                    status = 200
                    kind = "application/feed+json" if path.endswith(".json") else "application/xml"
                    headers["Content-Type"] = kind
            entry["status"] = status
            with open(log_path, "a") as log:
                log.write(json.dumps(entry) + "\n")
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
