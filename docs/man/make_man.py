#!/usr/bin/env python3
"""Generates the man pages from the texts they must agree with.

  make_man.py portvigil BINARY OUT   portvigil(8) from BINARY's --help, each command's --help
                                     and --version
  make_man.py config CONFIG_MD OUT   portvigil.toml(5) from docs/config.md
  make_man.py completion BINARY OUT  the bash completion, from the same --help texts
  make_man.py check BINARY CONFIG_MD PAGE8 PAGE5 [COMPLETION]
                                     checks that every option of every --help (and every
                                     key of docs/config.md) is in the pages and the
                                     completion (exit 1 if not)

The pages are generated at build time (CMake target `man`), so they cannot drift from the
binary's help or the configuration reference: the prose around the generated parts is the
only text kept here. Output is roff for man(7); it uses no date, so a build is
reproducible.
"""
import re
import subprocess
import sys

# ---- roff ----------------------------------------------------------------------------------


def esc(text):
    """Plain text to roff: backslashes, hyphens (so they stay ASCII in copy-paste)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return text


def line(text):
    """A roff text line: one starting with . or ' would be a request."""
    return "\\&" + text if text.startswith((".", "'")) else text


def inline(md):
    """Markdown inline (code spans, bold, italics, links) to roff."""
    out = []
    md = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", md)  # links: their text
    for i, part in enumerate(re.split(r"`([^`]*)`", md)):
        if i % 2:
            out.append("\\fB" + esc(part) + "\\fR")
            continue
        part = esc(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\\fI\1\\fR", part)
        out.append(part)
    return "".join(out)


# ---- portvigil(8) ---------------------------------------------------------------------------


def run(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"make_man.py: {binary} {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


OPTION = re.compile(r"^  (-\S.*?|    --\S.*?)(?:\s{2,}(\S.*))?$")


def help_to_roff(text, out):
    """One --help text: usage, paragraphs, option lists (.TP), trailing paragraphs."""
    lines = text.rstrip("\n").split("\n")
    i = 0
    # Usage (and its continuation lines) as a literal block.
    usage = []
    while i < len(lines) and lines[i].strip():
        usage.append(lines[i])
        i += 1
    out.append(".nf")
    # The first line loses "Usage: ", its continuation lines the same indentation.
    out += [line(esc(u[7:] if u.startswith(("Usage: ", " " * 7)) else u)) for u in usage]
    out.append(".fi")
    in_options = False
    paragraph = []

    def flush():
        if paragraph:
            out.append(".PP")
            out.extend(line(esc(p.strip())) for p in paragraph)
            paragraph.clear()

    while i < len(lines):
        text_line = lines[i]
        i += 1
        if not text_line.strip():
            flush()
            in_options = False
            continue
        if re.fullmatch(r"[A-Z][A-Za-z -]{0,30}:", text_line):  # "Options:", "Commands:"
            flush()
            out.append(".PP")
            out.append("\\fB" + esc(text_line[:-1]) + "\\fR")
            in_options = text_line.rstrip(":").endswith("Options") or text_line == "Commands:"
            continue
        m = OPTION.match(text_line) if in_options or text_line.startswith("  -") else None
        if m:
            flush()
            out.append(".TP")
            out.append(line("\\fB" + esc(m.group(1).strip()) + "\\fR"))
            if m.group(2):
                out.append(line(esc(m.group(2).strip())))
            continue
        if in_options and text_line.startswith("   "):
            out.append(line(esc(text_line.strip())))  # continues the option above
            continue
        if in_options and re.match(r"^  \S", text_line):  # "  word   text" (Commands:)
            name, _, rest = text_line.strip().partition(" ")
            out.append(".TP")
            out.append("\\fB" + esc(name) + "\\fR")
            out.append(line(esc(rest.strip())))
            continue
        paragraph.append(text_line)
    flush()


PORTVIGIL_HEAD = r""".TH PORTVIGIL 8 "" "portvigil {version}" "System Administration"
.nh
.ad l
.SH NAME
portvigil \- continuous port\-exposure monitoring agent and one\-shot port scanner
.SH SYNOPSIS
.nf
\fBportvigil agent\fR [\fB\-\-config\fR \fIFILE\fR] [\fIOPTIONS\fR]
\fBportvigil scan\fR [\fIOPTIONS\fR] \fITARGET\fR...
\fBportvigil check\-config\fR \fIFILE\fR
\fBportvigil changes\fR|\fBhistory\fR|\fBbaseline\fR|\fBstatus\fR [\fIOPTIONS\fR]
.fi
.SH DESCRIPTION
\fBportvigil agent\fR runs as a systemd service. On each job's schedule it scans the hosts
the configuration authorizes it to scan, with the technique the job names (TCP connect,
SYN, FIN, NULL, Xmas, ACK, UDP with protocol payloads), stores every scan in SQLite,
compares port states with the stored baseline and turns confirmed changes into change
events (JSON lines) and Prometheus metrics.
.PP
\fBportvigil scan\fR scans once and prints the result as Nmap does (table, XML, JSON,
grepable).
.PP
The other commands read what the agent stored: \fBchanges\fR, \fBhistory\fR,
\fBstatus\fR, and \fBbaseline\fR, which also accepts open ports as expected.
.PP
The configuration file is described in \fBportvigil.toml\fR(5). Every section below is the
command's own \fB\-\-help\fR.
.SH OPTIONS
"""

PORTVIGIL_TAIL = r""".SH FILES
.TP
.I /etc/portvigil/portvigil.toml
The configuration the service and the reading commands use (\fBportvigil.toml\fR(5)).
.TP
.I /var/lib/portvigil/portvigil.db
The SQLite database of scans, baselines, transitions and events (\fBstate\-dir\fR).
.TP
.I /var/lib/portvigil/events.jsonl
Change events, one JSON object per line (\fBevent\-log\fR).
.TP
.I /etc/portvigil/web.yml
A web configuration for TLS and passwords on /metrics, if \fB\-\-web.config.file\fR or
\fBweb\-config\-file\fR names it.
.SH ENVIRONMENT
.TP
.B PORTVIGIL_CONFIG
The configuration the reading commands use when \fB\-\-config\fR is not given.
.SH SEE ALSO
\fBportvigil.toml\fR(5), \fBnmap\fR(1), \fBprometheus\fR(1), \fBsystemd.service\fR(5)
.PP
/usr/share/doc/portvigil/ (README, operations guide, configuration reference)
"""


def commands_of(top_help):
    cmds, on = [], False
    for text_line in top_help.split("\n"):
        if text_line == "Commands:":
            on = True
            continue
        if on:
            m = re.match(r"^  (\S+)\s", text_line)
            if not m:
                break
            cmds.append(m.group(1))
    return cmds


def portvigil_page(binary):
    version = run(binary, "--version").split()[1]
    top = run(binary, "--help")
    out = [PORTVIGIL_HEAD.format(version=version).rstrip("\n")]
    help_to_roff(top, out)
    out.append(".SH COMMANDS")
    for cmd in commands_of(top):
        out.append(".SS " + esc(cmd))
        help_to_roff(run(binary, cmd, "--help"), out)
    out.append(PORTVIGIL_TAIL.rstrip("\n"))
    return "\n".join(out) + "\n"


# ---- portvigil.toml(5) ----------------------------------------------------------------------

CONFIG_HEAD = r""".TH PORTVIGIL.TOML 5 "" "portvigil" "File Formats"
.nh
.ad l
.SH NAME
portvigil.toml \- configuration of the portvigil agent
.SH SYNOPSIS
.I /etc/portvigil/portvigil.toml
.SH DESCRIPTION"""

CONFIG_TAIL = r""".SH SEE ALSO
\fBportvigil\fR(8)"""


def table_rows(lines, i):
    """The rows of the table starting at lines[i] (indented or not), and where it ends."""
    rows = []
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        if not all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.append(cells)
        i += 1
    return rows[1:], i  # the header row names the columns of what follows


def config_page(markdown):
    out = [CONFIG_HEAD]
    lines = markdown.split("\n")
    i = 0
    paragraph = []
    in_definition = False  # indented blocks after a definition belong to it

    def flush():
        if paragraph:
            out.append(".IP" if in_definition else ".PP")
            out.append(line(inline(" ".join(p.strip() for p in paragraph))))
            paragraph.clear()

    while i < len(lines):
        text = lines[i]
        stripped = text.strip()
        indented = text.startswith("  ")
        if stripped and not indented and not text.startswith(("|", "```")):
            if in_definition:
                flush()
            in_definition = in_definition and (i + 1 < len(lines) and lines[i + 1].startswith(": "))
        if stripped.startswith("```"):
            flush()
            i += 1
            out += [".IP", ".nf"] if in_definition and indented else [".PP", ".RS 4", ".nf"]
            while i < len(lines) and not lines[i].strip().startswith("```"):
                out.append(line(esc(lines[i][2:] if lines[i].startswith("  ") else lines[i])))
                i += 1
            out += [".fi"] if in_definition and indented else [".fi", ".RE"]
            i += 1
            continue
        if text.startswith("# "):  # the title: NAME says it
            i += 1
            continue
        if text.startswith("## "):
            flush()
            in_definition = False
            title = text[3:].strip()
            title = "OVERVIEW" if title == "Synopsis" else title  # SYNOPSIS is the file's path
            out.append('.SH "' + esc(title.upper()) + '"')
            i += 1
            continue
        if text.startswith("### "):
            flush()
            in_definition = False
            out.append('.SS "' + esc(text[4:].strip()) + '"')
            i += 1
            continue
        if stripped.startswith("|"):
            flush()
            rows, i = table_rows(lines, i)
            for cells in rows:
                if in_definition and indented:
                    out.append(".IP")
                    out.append(line("\\fB" + inline(cells[0]) + "\\fR: " +
                                    inline("; ".join(c for c in cells[1:] if c))))
                else:
                    out.append(".TP")
                    out.append(line(inline(cells[0])))
                    out.append(line(inline(" \u2014 ".join(c for c in cells[1:] if c))))
            continue
        if i + 1 < len(lines) and lines[i + 1].startswith(": ") and stripped:
            flush()  # a definition: `key` (type, default) then ": text" and indented lines
            out.append(".TP")
            out.append(line(inline(stripped)))
            body = [lines[i + 1][2:]]
            i += 2
            while i < len(lines) and lines[i].startswith("  ") and not lines[i].strip().startswith(("```", "|")):
                body.append(lines[i].strip())
                i += 1
            out.append(line(inline(" ".join(body))))
            in_definition = True
            continue
        if re.match(r"^\s*[*-] ", text):
            flush()
            item = [re.sub(r"^\s*[*-] ", "", text)]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and not re.match(r"^\s*[*-] ", lines[i]):
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2", line(inline(" ".join(item)))]
            continue
        if not stripped:
            flush()
        else:
            paragraph.append(text)
        i += 1
    flush()
    out.append(CONFIG_TAIL)
    return "\n".join(out) + "\n"


# ---- bash completion ---------------------------------------------------------------------------

OPTION_NAMES = re.compile(r"(?<![\w-])(--?[A-Za-z][\w.-]*)")


def options_of(help_text):
    """Every option a --help names, and those that take a FILE (or BASE) or a DIR."""
    names, files, dirs = [], [], []
    for text_line in help_text.split("\n"):
        m = OPTION.match(text_line)
        if not m:
            continue
        spec = m.group(1)
        found = OPTION_NAMES.findall(spec)
        names += [n for n in found if n not in names]
        # "-c, --config FILE": the argument after the last name belongs to every name.
        arg = spec.rsplit(found[-1], 1)[1].lstrip(" =") if found else ""
        for n in found:
            if arg.startswith(("FILE", "BASE")) and n not in files:
                files.append(n)
            elif arg.startswith("DIR") and n not in dirs:
                dirs.append(n)
    return names, files, dirs


def completion(binary):
    top = run(binary, "--help")
    cmds = commands_of(top)
    per_command, files, dirs = {}, [], []
    for cmd in cmds:
        names, f, d = options_of(run(binary, cmd, "--help"))
        per_command[cmd] = names
        files += [x for x in f if x not in files]
        dirs += [x for x in d if x not in dirs]
    cases = "\n".join(f'    {c}) opts="{" ".join(o)}" ;;' for c, o in per_command.items())
    arms = []
    if files:
        arms.append(f'    {"|".join(files)}) _filedir; return ;;')
    if dirs:
        arms.append(f'    {"|".join(dirs)}) _filedir -d; return ;;')
    arms = "\n".join(arms) or "    --) ;;"
    return f"""# bash completion for portvigil(8). Generated from its --help texts by
# docs/man/make_man.py: do not edit, regenerate.
_portvigil() {{
  local cur prev words cword split
  _init_completion -s || return  # -s: "--config=FILE" completes FILE
  if ((cword == 1)); then
    mapfile -t COMPREPLY < <(compgen -W "{" ".join(cmds)} --help --version" -- "$cur")
    return
  fi
  case $prev in
{arms}
  esac
  local opts=""
  case ${{words[1]}} in
{cases}
  esac
  if [[ ${{words[1]}} == baseline && $cword -eq 2 && $cur != -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "accept list revoke" -- "$cur")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  elif [[ ${{words[1]}} == check-config ]]; then
    _filedir toml
  fi
}}
complete -F _portvigil portvigil
"""


# ---- check -----------------------------------------------------------------------------------


def unroff(page):
    page = re.sub(r"\\f[BIRP]", "", page)
    return page.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def tag_lines(page):
    """The tag lines of a page's .TP items: where an option or key is defined."""
    lines = page.split("\n")
    return [lines[k + 1] for k in range(len(lines) - 1) if lines[k] == ".TP"]


def check(binary, config_md, page8, page5, completion_file=None):
    problems = []
    top = run(binary, "--help")
    if completion_file:
        text = open(completion_file, encoding="utf-8").read()
        for cmd in commands_of(top):
            for opt in options_of(run(binary, cmd, "--help"))[0]:
                if not re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w.-])", text):
                    problems.append(f"completion: {cmd} --help names {opt}, the completion does not")
    # Every option of every --help is the tag of an item in portvigil.8.
    tags8 = unroff("\n".join(tag_lines(open(page8, encoding="utf-8").read())))
    for cmd in [""] + commands_of(top):
        args = [cmd, "--help"] if cmd else ["--help"]
        for opt in options_of(run(binary, *args))[0]:
            if not re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w.-])", tags8):
                problems.append(f"portvigil.8: {' '.join(args)} names {opt}, no item of the page does")
    # Every key docs/config.md defines is the tag (in bold) of an item in portvigil.toml.5.
    tags5 = "\n".join(tag_lines(open(page5, encoding="utf-8").read()))
    for key in re.findall(r"^`([a-z][a-z0-9-]*)`", open(config_md, encoding="utf-8").read(), re.M):
        if "\\fB" + esc(key) + "\\fR" not in tags5:
            problems.append(f"portvigil.toml.5: docs/config.md defines {key}, no item of the page does")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "portvigil":
        page = portvigil_page(argv[2])
    elif len(argv) == 4 and argv[1] == "config":
        page = config_page(open(argv[2], encoding="utf-8").read())
    elif len(argv) == 4 and argv[1] == "completion":
        page = completion(argv[2])
    elif len(argv) in (6, 7) and argv[1] == "check":
        return check(*argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[3], "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
