#!/usr/bin/env python3
"""Writes a recording (HSL dump lines, gzip) of N synthetic buses moving around central Helsinki at 1 Hz, for the
page smoothness check: every bus inside the page's default view (60.17 N, 24.94 E, zoom 12 at 1280x800).
Usage: vehicles2k.py OUT.hfp.gz [--vehicles 2000] [--seconds 120]"""
import argparse, gzip, math, random
from datetime import datetime, timedelta, timezone

p = argparse.ArgumentParser()
p.add_argument("out"); p.add_argument("--vehicles", type=int, default=2000); p.add_argument("--seconds", type=int, default=120)
a = p.parse_args()
rng = random.Random(42)
t0 = datetime(2026, 3, 2, 6, 0, 0, tzinfo=timezone.utc)
buses = []
for v in range(a.vehicles):
    # a circle per bus inside the view: centre, radius (deg), angular speed (about 5-12 m/s)
    buses.append((60.17 + rng.uniform(-0.035, 0.035), 24.94 + rng.uniform(-0.09, 0.09), rng.uniform(0.003, 0.012),
                  rng.uniform(0, 2 * math.pi), rng.choice([-1, 1]) * rng.uniform(0.01, 0.03), 1000 + v % 60))
with gzip.open(a.out, "wt", encoding="utf-8", compresslevel=3) as f:
    for s in range(a.seconds):
        for v, (clat, clon, r, ph, w, route) in enumerate(buses):
            ang = ph + w * s
            lat = clat + r * math.sin(ang) * 0.5
            lon = clon + r * math.cos(ang)
            hdg = int((math.degrees(-ang) + (0 if w > 0 else 180)) % 360)
            t = t0 + timedelta(seconds=s, milliseconds=(v * 7) % 1000)
            ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
            oper, veh = 18, 10000 + v
            topic = f"/hfp/v2/journey/ongoing/vp/bus/{oper:04d}/{veh:05d}/{route}/1/Dest/07:00/1000000/0/60;24/19/91/24"
            payload = ('{"VP":{"desi":"%d","dir":"1","oper":%d,"veh":%d,"tst":"%s","tsi":%d,"spd":8.0,"hdg":%d,"lat":%.6f,'
                       '"long":%.6f,"acc":0.0,"dl":%d,"odo":0,"drst":0,"oday":"2026-03-02","jrn":1,"line":1,"start":"07:00",'
                       '"loc":"GPS","stop":null,"route":"%d","occu":0}}') % (route, oper, veh, ts, int(t.timestamp()), hdg, lat, lon,
                                                                              (v * 37) % 600 - 120, route)
            f.write(f"{ts} {topic} {payload}\n")
