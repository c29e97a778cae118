#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# delay-proxy.py LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT DELAY_MS - a far link
# where tc netem is missing: a TCP proxy that holds every byte the far end
# (TO) sends for DELAY_MS before passing it on; the other direction goes at
# once. Each accepted connection gets its own; runs until killed.
import asyncio
import sys

lhost, lport, thost, tport, delay_ms = sys.argv[1:6]
delay = float(delay_ms) / 1e3


async def pipe(reader, writer, hold):
    """Copies reader to writer, each chunk sent hold s after it came."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            await queue.put((loop.time() + hold, data))
    except OSError:
        pass
    await queue.put((0, None))
    try:
        await sender
    except OSError:
        pass


async def serve(creader, cwriter):
    try:
        sreader, swriter = await asyncio.open_connection(thost, int(tport))
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pipe(creader, swriter, 0),
                         pipe(sreader, cwriter, delay))


async def main():
    server = await asyncio.start_server(serve, lhost, int(lport))
    async with server:
        await server.serve_forever()

asyncio.run(main())
