"""Verify a message's DKIM signature with dkimpy, an implementation independent of ours.
usage: dkim_verify.py MESSAGE_FILE "v=DKIM1; k=...; p=..."  (the TXT record to use)
Prints PASS or FAIL and exits 0 or 1."""
import sys

import dkim


def main():
    message = open(sys.argv[1], "rb").read()
    record = sys.argv[2].encode()

    def dnsfunc(name, timeout=5):
        return record

    ok = dkim.verify(message, dnsfunc=dnsfunc)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
