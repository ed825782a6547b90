"""Writes kiln's man pages from the commands' own help (`kiln --experimental-dump-help`), one page per command.

Usage: manpage.py KILN OUTDIR [DATE]
DATE (YYYY-MM-DD) defaults to today; scripts/install passes SOURCE_DATE_EPOCH's date when it is set.
"""
import datetime
import json
import os
import subprocess
import sys


def roff(text):
    """Text safe for roff: backslashes doubled, lines never starting with a control character."""
    out = []
    for line in (text or "").replace("\\", "\\e").split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def flag_names(arg):
    names = []
    for n in arg.get("names", []):
        names.append(("-" if n["kind"] == "short" else "--") + n["name"])
    return names


def synopsis(arg):
    if arg["kind"] == "positional":
        s = f"<{arg['valueName']}>"
    else:
        name = flag_names(arg)[-1] if arg.get("names") else arg["valueName"]
        pref = arg.get("preferredName")
        if pref:
            name = ("-" if pref["kind"] == "short" else "--") + pref["name"]
        s = name if arg["kind"] == "flag" else f"{name} <{arg['valueName']}>"
    if arg.get("isRepeating"):
        s += " ..."
    return f"[{s}]" if arg.get("isOptional") else s


def page(command, path, date, version):
    full = " ".join(path)
    title = "-".join(path).upper()
    lines = [f'.TH "{title}" 1 "{date}" "kiln {version}" "kiln manual"', ".SH NAME",
             f"{roff(full)} \\- {roff(command.get('abstract', ''))}", ".SH SYNOPSIS", f".B {full}"]
    args = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    subs = [s for s in command.get("subcommands", []) if s.get("shouldDisplay", True) and s["commandName"] != "help"]
    if subs:
        lines.append("<command> [<options>]")
    else:
        lines.append(roff(" ".join(synopsis(a) for a in args)))
    if command.get("discussion"):
        lines += [".SH DESCRIPTION", roff(command["discussion"])]
    if args:
        lines.append(".SH OPTIONS")
        for a in args:
            if a["kind"] == "positional":
                head = f"<{a['valueName']}>"
            else:
                head = ", ".join(flag_names(a))
                if a["kind"] == "option":
                    head += f" <{a['valueName']}>"
            lines += [".TP", f".B {roff(head)}", roff(a.get("abstract", "")) or "\\&"]
            if a.get("discussion"):
                lines.append(roff(a["discussion"]) if isinstance(a["discussion"], str) else "")
            if a.get("defaultValue"):
                lines.append(roff(f"(default: {a['defaultValue']})"))
    if subs:
        lines.append(".SH COMMANDS")
        for s in subs:
            lines += [".TP", f".B {s['commandName']}", roff(s.get("abstract", "")),
                      f"See \\fB{'-'.join(path + [s['commandName']])}\\fR(1)."]
    lines += [".SH EXIT STATUS",
              "0 ok, 1 verification failed or plan infeasible, 2 usage or input error, 3 I/O or environment error."]
    if len(path) > 1:
        lines += [".SH SEE ALSO", "\\fBkiln\\fR(1)"]
    return "\n".join(lines) + "\n"


def walk(command, path, out, date, version):
    name = "-".join(path)
    with open(os.path.join(out, name + ".1"), "w") as f:
        f.write(page(command, path, date, version))
    for s in command.get("subcommands", []):
        if s.get("shouldDisplay", True) and s["commandName"] != "help":
            walk(s, path + [s["commandName"]], out, date, version)


def main():
    kiln, out = sys.argv[1], sys.argv[2]
    date = sys.argv[3] if len(sys.argv) > 3 else datetime.date.today().isoformat()
    info = json.loads(subprocess.run([kiln, "--experimental-dump-help"], check=True, capture_output=True).stdout)
    version = subprocess.run([kiln, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    os.makedirs(out, exist_ok=True)
    walk(info["command"], [info["command"]["commandName"]], out, date, version)


if __name__ == "__main__":
    main()
