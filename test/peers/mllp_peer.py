#!/usr/bin/python3
"""A RIS for the tests: an MLLP server built on Debian's python3-hl7 (hl7.mllp, hl7.parse), not on Delineate's code.

Usage: mllp_peer.py RECORD_FILE [BEHAVIOUR ...]
Prints the port it listens on (127.0.0.1, a free port), then answers each message it receives with the next
behaviour (AA, AE, AR; drop: closes the connection without answering; silent: never answers), AA once they are
used up. With PEER_TLS_CERT and PEER_TLS_KEY in the environment (PEM files) it speaks MLLP over TLS. Every message received is written to RECORD_FILE as one JSON line: its fields as hl7.parse reads them.
"""
import asyncio
import json
import os
import ssl
import sys

import hl7
from hl7.mllp import start_hl7_server

record_path = sys.argv[1]
behaviours = list(sys.argv[2:])


def fields(message, name):
    return [[str(f) for f in seg] for seg in message if str(seg[0]) == name]


async def serve(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            behaviour = behaviours.pop(0) if behaviours else "AA"
            msh = message.segment("MSH")
            entry = {
                "behaviour": behaviour,
                "controlId": str(msh(10)),
                "type": str(msh(9)),
                "version": str(msh(12)),
                "pid": fields(message, "PID"),
                "orc": fields(message, "ORC"),
                "obr": fields(message, "OBR"),
                "obx": fields(message, "OBX"),
                # components and repetitions as the library splits them
                "pid5family": str(message.segment("PID")(5)(0)(1)),
                "obxTexts": [
                    [str(r) for r in seg(5)] for seg in message if str(seg[0]) == "OBX" and str(seg(2)) == "TX"
                ],
            }
            with open(record_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            if behaviour == "drop":
                writer.close()
                return
            if behaviour == "silent":
                await asyncio.sleep(3600)
                return
            writer.writemessage(message.create_ack(ack_code=behaviour))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        if not writer.is_closing():
            writer.close()


async def main():
    context = None
    if os.environ.get("PEER_TLS_CERT"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["PEER_TLS_CERT"], os.environ["PEER_TLS_KEY"])
    server = await start_hl7_server(serve, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
