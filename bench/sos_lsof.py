#!/usr/bin/env python3
"""Helpers for bench/sos.sh (issue 10's benchmark).

  sos_lsof.py grow LSOF PID COUNT > NEW_LSOF
      Rewrites a real `lsof -b +M -n -l -c ''` listing (as sos saved it) with COUNT more rows
      of NETLINK_GENERIC sockets held by PID, the way lsof prints them
      (`netlink  0t0 INODE GENERIC`), column widths recomputed as lsof computes them: the
      result is what lsof prints on a node of seed 000's scale.

  sos_lsof.py insights LSOF
      Parses LSOF with insights-core's `insights.parsers.lsof.Lsof` and counts each process's
      NETLINK_GENERIC sockets (what an SRE would ask of it); prints the biggest count and the
      parse time measured in-process, without Python's start-up and imports.
"""
import sys
import time


def columns(header):
    """Right edges of the columns between PID and NAME, as in crates/sos/src/lsof.rs."""
    pid_end = header.index(" PID") + 4
    name_start = header.rindex(" NAME") + 1
    middle = []
    offset = pid_end
    for word in header[pid_end:name_start].split(" "):
        if word:
            middle.append((word, offset + len(word) + (2 if word == "FD" else 0)))
        offset += len(word) + 1
    return pid_end, middle, name_start


def rows(lines):
    it = iter(lines)
    for line in it:
        if line.startswith("COMMAND "):
            header = line
            break
    else:
        raise SystemExit("no lsof header")
    pid_end, middle, name_start = columns(header)
    for line in it:
        if line.startswith("lsof: ") or line.startswith("      Output"):
            continue
        head = line[:pid_end]
        cmd, pid = head.rstrip().rsplit(" ", 1) if " " in head.rstrip() else ("", head)
        values = {}
        start = pid_end
        for name, end in middle:
            end = min(end, name_start)
            values[name] = line[start:end].strip()
            start = end
        values["COMMAND"] = cmd.strip()
        values["PID"] = pid.strip()
        values["NAME"] = line[name_start:].strip()
        yield values


def grow(path, pid, count):
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    prelude = [l for l in lines if l.startswith("lsof: ") or l.startswith("      Output")]
    table = list(rows(lines))
    target = next((r for r in table if r["PID"] == pid), None)
    if target is None:
        raise SystemExit(f"pid {pid} is not in {path}")
    used = {int("".join(c for c in r["FD"] if c.isdigit()) or -1) for r in table if r["PID"] == pid}
    fd = 3
    inode = 90_000_000
    added = []
    while len(added) < count:
        if fd not in used:
            added.append({"COMMAND": target["COMMAND"], "PID": pid, "USER": target["USER"],
                          "FD": f"{fd}u", "TYPE": "netlink", "DEVICE": "", "SIZE/OFF": "0t0",
                          "NODE": str(inode), "NAME": "GENERIC"})
            inode += 1
        fd += 1
    # Keep the process's rows together, as lsof prints them.
    at = max(i for i, r in enumerate(table) if r["PID"] == pid) + 1
    table[at:at] = added

    def number(fd_text):
        digits = "".join(c for c in fd_text if c.isdigit())
        return (digits, fd_text[len(digits):]) if digits else (fd_text, "")

    w = {k: len(k) for k in ["COMMAND", "PID", "USER", "FD", "TYPE", "DEVICE", "SIZE/OFF", "NODE"]}
    for r in table:
        for k in w:
            value = number(r[k])[0] if k == "FD" else r[k]
            w[k] = max(w[k], len(value))
    out = sys.stdout
    for line in prelude:
        out.write(line + "\n")
    out.write(f"{'COMMAND':<{w['COMMAND']}} {'PID':>{w['PID']}} {'USER':>{w['USER']}} "
              f"{'FD':>{w['FD']}}   {'TYPE':>{w['TYPE']}} {'DEVICE':>{w['DEVICE']}} "
              f"{'SIZE/OFF':>{w['SIZE/OFF']}} {'NODE':>{w['NODE']}} NAME\n")
    for r in table:
        num, mode = number(r["FD"])
        mode = (mode + "  ")[:2]
        out.write(f"{r['COMMAND']:<{w['COMMAND']}} {r['PID']:>{w['PID']}} {r['USER']:>{w['USER']}} "
                  f"{num:>{w['FD']}}{mode} {r['TYPE']:>{w['TYPE']}} {r['DEVICE']:>{w['DEVICE']}} "
                  f"{r['SIZE/OFF']:>{w['SIZE/OFF']}} {r['NODE']:>{w['NODE']}} {r['NAME']}\n")


def insights(path):
    from insights.core.context import Context
    from insights.parsers.lsof import Lsof

    counts = {}

    def generic(self, row):
        if row.get("TYPE") == "netlink" and row.get("NAME") == "GENERIC":
            counts[row["PID"]] = counts.get(row["PID"], 0) + 1

    Lsof._scan("generic_netlink", generic)
    with open(path, errors="replace") as f:
        content = f.read().splitlines()
    started = time.perf_counter()
    Lsof(Context(content=content, path=path))
    elapsed = time.perf_counter() - started
    pid, most = max(counts.items(), key=lambda kv: kv[1])
    print(f"pid {pid}: {most} NETLINK_GENERIC sockets; insights-core parsed "
          f"{len(content)} lines in {elapsed:.3f} s")


if __name__ == "__main__":
    if sys.argv[1] == "grow":
        grow(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "insights":
        insights(sys.argv[2])
    else:
        raise SystemExit(__doc__)
