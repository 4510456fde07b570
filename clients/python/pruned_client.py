"""A client for the pruned daemon's control socket (standard library only, Python >= 3.9).

The protocol (docs/PROTOCOL.md): on connect the daemon greets with ``HELLO {json}``; every
request is one line and gets exactly one reply line, in order: ``OK {json}`` or
``ERR CODE message``. ``EVENT {json}`` lines only ever arrive on a connection that sent
``subscribe``.

    from pruned_client import Client, PrunedError

    with Client() as c:                       # $PRUNED_SOCKET, /run/pruned/control.sock, ...
        run = c.submit("F2_VGG_4", group="night", tags=["baseline"],
                       overrides={"optimizer.lr": 0.01}, epochs=40)
        print(c.wait([run["id"]]))            # {'r-0007': 'completed'}
        for ev in c.events(run=run["id"]):   # replays and follows, reconnecting when dropped
            ...
        rows = c.group_metrics("night")       # every run's epoch rows, flat: pandas.DataFrame(rows)

Every convenience method returns the reply's JSON object (a dict) unchanged and raises
``PrunedError`` (``.code`` is the stable error code such as ``NOT_FOUND``) for an ERR reply.
A ``Client`` is not thread-safe: give each thread its own.
"""

import json
import math
import os
import pwd
import re
import select
import socket
import stat
import sys
import time

__all__ = [
    "Client", "EventStream", "PrunedError", "ProtocolViolation", "UnsafeSocketError", "TERMINAL_STATES",
    "default_socket_path", "check_socket_path", "socket_rule", "quote", "render_value", "render_request",
    "flatten_row",
]

SYSTEM_SOCKET = "/run/pruned/control.sock"
#: The system service's user (systemd/sysusers.d/pruned.conf); it may own /run/pruned.
SYSTEM_USER = "pruned"
#: States a run never leaves by itself.
TERMINAL_STATES = ("completed", "failed", "cancelled")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_NUMERIC_CHARS = set("0123456789+-.eE")



_SLURM_KEYS = ("partition", "time", "cpus_per_task", "mem", "max_concurrent", "account", "batch")


def _slurm_args(executor, slurm):
    """The ``executor=`` and ``slurm.KEY=VALUE`` arguments of a submit."""
    parts = []
    if executor is not None:
        if executor not in ("local", "slurm"):
            raise ValueError("executor must be 'local' or 'slurm'")
        parts.append("executor=" + executor)
    for key, value in (slurm or {}).items():
        if key == "sbatch_args":
            if isinstance(value, str):
                raise ValueError("sbatch_args is a list of options such as ['--qos=low']")
            parts += ["slurm.sbatch_arg=" + quote(str(a)) for a in value]
        elif key in _SLURM_KEYS:
            parts.append("slurm.%s=%s" % (key, quote(str(value))))
        else:
            raise ValueError("unknown Slurm option %r; known: %s, sbatch_args" % (key, ", ".join(_SLURM_KEYS)))
    return parts


class PrunedError(Exception):
    """An ``ERR CODE message`` reply. ``code`` is stable (clients branch on it); the message is for people."""

    def __init__(self, code, message=""):
        super().__init__("%s %s" % (code, message) if message else code)
        self.code = code
        self.message = message


class UnsafeSocketError(Exception):
    """The socket's directory, a directory above it, or the socket itself belongs to or is
    writable by another user, who could have put a fake daemon there: the client refuses to
    connect. Not an OSError, so that nothing retries it."""


class ProtocolViolation(ConnectionError):
    """The daemon sent something that is not a protocol line, or closed the connection mid-request."""


def default_socket_path(env=None, exists=os.path.exists, uid=None):
    """Where the daemon's socket is, as prunectl finds it: $PRUNED_SOCKET; else the systemd socket
    /run/pruned/control.sock when it exists; else $XDG_RUNTIME_DIR/pruned/control.sock when it
    exists; else /tmp/pruned-UID/control.sock when it exists; else the user-mode path
    ($XDG_RUNTIME_DIR/pruned/control.sock, or /tmp/pruned-UID/control.sock without XDG_RUNTIME_DIR)."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    if env.get("PRUNED_SOCKET"):
        return env["PRUNED_SOCKET"]
    if exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    xdg = env.get("XDG_RUNTIME_DIR") or None
    if xdg and exists(xdg + "/pruned/control.sock"):
        return xdg + "/pruned/control.sock"
    tmp = "/tmp/pruned-%d/control.sock" % uid
    if exists(tmp):
        return tmp
    return xdg + "/pruned/control.sock" if xdg else tmp


def _dirname(path):
    """The directory part of a path, as prunectl computes it ("." for a bare name)."""
    p = path.rstrip("/") or "/"
    if "/" not in p:
        return "."
    d = p[:p.rindex("/")].rstrip("/")
    return d or "/"


def _normalised(path):
    parts = [x for x in path.split("/") if x not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def _describe(uid):
    try:
        return "uid %d (%s)" % (uid, pwd.getpwuid(uid).pw_name)
    except KeyError:
        return "uid %d" % uid


def socket_rule(path, env=None, uid=None):
    """'private' for the per-user fallbacks ($XDG_RUNTIME_DIR/pruned/..., /tmp/pruned-UID/...),
    'shared' for every other socket directory (/run/pruned, explicit paths)."""
    env = os.environ if env is None else env
    uid = os.geteuid() if uid is None else uid
    d = _normalised(_dirname(path))
    if d == "/tmp/pruned-%d" % uid:
        return "private"
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and d == _normalised(xdg + "/pruned"):
        return "private"
    return "shared"


def check_socket_path(path, env=None, uid=None):
    """Raises UnsafeSocketError unless the socket's directory, the directories above it and the
    socket follow prunectl's rule (docs/PROTOCOL.md, Security): a private directory is a real
    directory (not a symbolic link) owned by you with mode exactly 0700; a shared one is owned by
    root, you or the `pruned` user and not writable by group or others; every directory above is
    owned by one of those and not writable by group or others unless sticky (like /tmp); an
    existing socket is a socket owned by you or root (shared: or the `pruned` user). A directory
    that does not exist passes (connecting fails anyway)."""
    uid = os.geteuid() if uid is None else uid
    rule = socket_rule(path, env, uid)
    owners = {0, uid}
    if rule == "shared":
        try:
            owners.add(pwd.getpwnam(SYSTEM_USER).pw_uid)
        except KeyError:
            pass
    names = " or ".join(_describe(u) for u in sorted(owners))
    d = _dirname(path)
    try:
        st = os.lstat(d)
    except OSError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if rule == "private":
        expected = "a directory owned by %s with mode 0700" % _describe(uid)
        why = (" (another user may have created it to intercept your requests: remove it, "
               "or set XDG_RUNTIME_DIR)")
    else:
        expected = "a directory owned by %s and not writable by group or others" % names
        why = " (whoever can write there can replace the socket with a fake daemon)"
    if not stat.S_ISDIR(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise UnsafeSocketError("refusing the socket directory %s: it is %s, owned by %s; expected %s%s"
                                % (d, what, _describe(st.st_uid), expected, why))
    if rule == "private":
        ok = st.st_uid == uid and mode == 0o700
    else:
        ok = st.st_uid in owners and mode & 0o022 == 0
    if not ok:
        raise UnsafeSocketError("refusing the socket directory %s: owned by %s with mode %04o; expected %s%s"
                                % (d, _describe(st.st_uid), mode, expected, why))
    above = {0, uid}
    try:
        above.add(pwd.getpwnam(SYSTEM_USER).pw_uid)
    except KeyError:
        pass
    p = os.path.realpath(_dirname(d))
    while True:
        try:
            a = os.lstat(p)
        except OSError:
            a = None
        if a is not None:
            m = stat.S_IMODE(a.st_mode)
            if a.st_uid not in above or (m & 0o022 and not m & stat.S_ISVTX):
                raise UnsafeSocketError(
                    "refusing the socket directory %s: the directory above it, %s, is owned by %s with mode %04o; "
                    "expected one owned by %s and not writable by group or others unless sticky (like /tmp), "
                    "since whoever can write there can replace %s"
                    % (d, p, _describe(a.st_uid), m, " or ".join(_describe(u) for u in sorted(above)), d))
        if p == "/":
            break
        p = _dirname(p)
    try:
        s = os.lstat(path)
    except OSError:
        return
    sock_owners = {0, uid} if rule == "private" else owners
    sock_names = " or ".join(_describe(u) for u in sorted(sock_owners))
    if not stat.S_ISSOCK(s.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(s.st_mode) else "not a socket"
        raise UnsafeSocketError("refusing %s: it is %s; expected a socket owned by %s" % (path, what, sock_names))
    if s.st_uid not in sock_owners:
        raise UnsafeSocketError("refusing the socket %s: owned by %s with mode %04o; expected a socket owned by %s "
                                "(another user may have put a fake daemon there)"
                                % (path, _describe(s.st_uid), stat.S_IMODE(s.st_mode), sock_names))


# ----------------------------------------------------------------------------------------------
# Rendering request lines (mirrors Sources/Control/Lexer.swift: Lexer.quoteIfNeeded/renderValue)


def _looks_numeric(s):
    return bool(s) and s[0] in "-0123456789" and all(c in _NUMERIC_CHARS for c in s)


def quote(value):
    """A string as a request argument value: bare when the daemon reads it back unchanged as that
    string, else in double quotes with \\" \\\\ \\n \\t escapes. Other control characters cannot be
    written on a request line at all (the daemon refuses them): ValueError."""
    if not isinstance(value, str):
        raise TypeError("quote() takes a str, got %r" % (value,))
    bad = [c for c in value if (ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F]
    if bad:
        raise ValueError("control character U+%04X cannot be sent in a quoted string; put the value "
                         "inside a JSON object instead (e.g. the whole parent object)" % ord(bad[0]))
    plain = (value != "" and not any(c in ' \t"\\=' or ord(c) < 0x20 for c in value)
             and value[0] not in "{[")
    if plain and not _looks_numeric(value) and value not in ("true", "false", "null"):
        return value
    out = ['"']
    for c in value:
        out.append({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}.get(c, c))
    out.append('"')
    return "".join(out)


def _json(value):
    """Compact JSON for a request line. DEL is legal raw JSON but refused on a request line, and can
    only occur inside a JSON string, so it is written as \\u007f."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("\x7f", "\\u007f")


def render_value(value):
    """A Python value as an argument value: str -> quoted when needed; bool -> true/false;
    None -> null; int/float -> a JSON number; dict/list/tuple -> compact JSON."""
    if isinstance(value, str):
        return quote(value)
    if value is None or isinstance(value, bool):
        return _json(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("%r is not a JSON number" % value)
        return _json(value)
    if isinstance(value, (dict, list, tuple)):
        return _json(value)
    raise TypeError("cannot send %r (%s) as an argument value" % (value, type(value).__name__))


def _run_id(run):
    """A run id argument: 'r-0042', '42' and 42 are all accepted."""
    if isinstance(run, bool):
        raise TypeError("a run id, not a bool")
    if isinstance(run, int):
        return "r-%04d" % run
    if isinstance(run, dict) and "id" in run:   # a submit/show reply
        return _run_id(run["id"])
    run = str(run)
    if not re.match(r"^(r-)?[0-9]{1,12}$", run):
        raise ValueError("%r is not a run id (r-0042)" % run)
    return run


def _names(tags):
    if isinstance(tags, str):
        tags = [t for t in tags.split(",")]
    tags = [str(t) for t in tags]
    for t in tags:
        if "," in t:
            raise ValueError("tag %r contains a comma" % t)
    return tags


def _override_items(overrides, kwargs):
    """Dotted-path overrides from a dict, plus keyword arguments (a__b stands for a.b)."""
    items = []
    for key, value in list((overrides or {}).items()) + [(k.replace("__", "."), v) for k, v in kwargs.items()]:
        key = str(key)
        if not _KEY.match(key) or key.endswith(".") or ".." in key:
            raise ValueError("%r is not a spec path (letters, digits, _ - and dots, e.g. optimizer.lr)" % key)
        if key in ("spec", "group", "tag", "priority", "hold", "checkpoint"):
            raise ValueError("%r is a request argument, not a spec path; use the keyword parameter" % key)
        if any(k == key for k, _ in items):
            raise ValueError("override %r given twice" % key)
        items.append((key, value))
    return items


def render_request(verb, *positional, **named):
    """A request line: the verb, positional values, then key=value pairs (None values left out)."""
    parts = [verb]
    parts += [render_value(p) for p in positional if p is not None]
    for k, v in named.items():
        if v is not None:
            parts.append("%s=%s" % (k, render_value(v)))
    return " ".join(parts)


def _edits(parts, group=None, tags=None, priority=None, hold=None, overrides=(), spec=None):
    if spec is not None:
        if isinstance(spec, (str, bytes)):
            spec = json.loads(spec)      # validate, and render compactly on one line
        if not isinstance(spec, dict):
            raise TypeError("spec must be a dict (or JSON text of an object)")
        parts.append("spec=" + _json(spec))
    for key, value in overrides:
        parts.append("%s=%s" % (key, render_value(value)))
    if group is not None:
        # set: group="" removes the run from its group.
        parts.append("group=" + (quote(str(group)) if str(group) or parts[0] != "set" else '""'))
    if tags is not None:
        names = _names(tags)
        if names:
            parts.append("tag=" + quote(",".join(names)))
        elif parts[0] == "set":
            parts.append('tag=""')          # set: an empty tag list clears the tags
    if priority is not None:
        parts.append("priority=%d" % int(priority))
    if hold:
        parts.append("hold=true")
    return parts


# ----------------------------------------------------------------------------------------------
# The connection


class _LineSocket:
    """A Unix stream socket read line by line."""

    def __init__(self, path, timeout):
        self.path = path
        check_socket_path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buffer = b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send_line(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def read_line(self):
        """The next line without its terminator; ProtocolViolation on EOF."""
        while True:
            nl = self.buffer.find(b"\n")
            if nl >= 0:
                line, self.buffer = self.buffer[:nl], self.buffer[nl + 1:]
                return line.rstrip(b"\r").decode("utf-8", "replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolViolation("the daemon closed the connection (%s)" % self.path)
            self.buffer += chunk

    def unsolicited(self):
        """Whatever arrived without a request (e.g. an idle-timeout ERR, or EOF): (lines, eof)."""
        lines, eof = [], False
        while True:
            try:
                r, _, _ = select.select([self.sock], [], [], 0)
            except (OSError, ValueError):
                return lines, True
            if not r:
                break
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return lines, True
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            lines.append(line.decode("utf-8", "replace"))
        return lines, eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _parse_reply(line):
    """('HELLO'|'OK'|'EVENT', dict) or raises PrunedError for ERR."""
    marker, _, rest = line.partition(" ")
    if marker == "ERR":
        code, _, message = rest.partition(" ")
        raise PrunedError(code, message)
    if marker in ("OK", "HELLO", "EVENT"):
        try:
            return marker, (json.loads(rest) if rest.strip() else {})
        except ValueError:
            raise ProtocolViolation("malformed %s payload: %.200s" % (marker, rest))
    raise ProtocolViolation("not a protocol reply: %.200s" % line)


def _connect(path, timeout):
    """Connects and reads the greeting: (line socket, hello dict). An ERR greeting (BUSY,
    PERMISSION_DENIED) raises PrunedError; an unsafe socket directory UnsafeSocketError
    (check_socket_path), before connecting."""
    ls = _LineSocket(path, timeout)
    try:
        marker, hello = _parse_reply(ls.read_line())
        if marker != "HELLO":
            raise ProtocolViolation("expected HELLO, got %s" % marker)
    except BaseException:
        ls.close()
        raise
    return ls, hello


class _Closing:
    """`with` support and close-on-collection for objects with a close() method."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Client(_Closing):
    """One connection to the daemon.

    ``path``: the socket (default: ``default_socket_path()``); ``timeout``: seconds to wait for
    any reply (None: forever). ``hello`` is the greeting (server, protocol, version, boot_id,
    user, uid, admin, max_line).

    The connection is re-opened automatically *before* a request when it is gone or the daemon
    has closed it meanwhile (it closes connections idle for --idle-timeout, 900 s by default).
    A request whose reply is lost (timeout, daemon stopped) is never re-sent: it raises
    ``TimeoutError`` or ``ConnectionError`` because it may or may not have taken effect.
    """

    def __init__(self, path=None, timeout=30):
        self.path = path or default_socket_path()
        self.timeout = timeout
        self._conn = None
        self.hello = {}
        #: EVENT lines that arrived on this connection (only after a raw ``subscribe`` request).
        self.pending_events = []
        self._open()

    # -- connection management

    def _open(self):
        self._conn, self.hello = _connect(self.path, self.timeout)

    @property
    def boot_id(self):
        return self.hello.get("boot_id")

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _ready(self):
        """An open connection with nothing unread: reconnects after an idle close."""
        if self._conn is not None:
            lines, eof = self._conn.unsolicited()
            for line in lines:
                if line.startswith("EVENT "):
                    self.pending_events.append(json.loads(line[6:]))
                else:
                    # The only unsolicited non-event line is the idle-timeout ERR before a close.
                    eof = True
            if eof:
                self.close()
        if self._conn is None:
            self._open()
        return self._conn

    # -- requests

    def request(self, line, timeout=None):
        """Sends one request line and returns the OK payload; raises PrunedError on ERR.
        ``timeout`` overrides the client's for this request (deferred replies such as pause wait
        for the run's next training step)."""
        if "\n" in line or "\r" in line:
            raise ValueError("a request is one line")
        try:
            return self._request(line, timeout)
        except PrunedError as e:
            # The daemon's idle close can cross a request in flight: it sends `ERR TIMEOUT idle
            # ...; closing` and closes without reading further, so the request was not carried
            # out and is safe to send again on a new connection.
            if e.code == "TIMEOUT" and e.message.startswith("idle"):
                self.close()
                return self._request(line, timeout)
            raise

    def _request(self, line, timeout):
        conn = self._ready()
        if timeout is not None:
            conn.settimeout(timeout)
        try:
            conn.send_line(line)
            while True:
                marker, payload = _parse_reply(conn.read_line())
                if marker == "EVENT":
                    self.pending_events.append(payload)
                    continue
                if marker != "OK":
                    raise ProtocolViolation("unexpected %s reply" % marker)
                if line.split(" ", 1)[0].lower() == "quit":
                    self.close()
                return payload
        except PrunedError as e:
            if e.code in ("LINE_TOO_LONG", "BUSY", "TIMEOUT") and e.message.endswith("closing"):
                self.close()
            raise
        except socket.timeout:
            self.close()   # the reply may still come: this connection is out of step now
            raise TimeoutError("no reply to %r within %s s (the request may still take effect)"
                               % (line[:60], timeout if timeout is not None else self.timeout))
        except OSError:
            self.close()
            raise
        finally:
            if timeout is not None and self._conn is not None:
                self._conn.settimeout(self.timeout)

    def _call(self, parts, timeout=None):
        return self.request(" ".join(parts), timeout=timeout)

    # -- one method per verb

    def ping(self):
        return self.request("ping")

    def version(self):
        return self.request("version")

    def help(self, command=None):
        return self._call(["help"] + ([quote(command)] if command else []))

    def status(self):
        return self.request("status")

    def submit(self, preset=None, spec=None, group=None, tags=(), priority=None, hold=False,
               overrides=None, executor=None, slurm=None, **more):
        """Queues a run from a preset name and/or an inline ``spec`` (dict or JSON text).
        ``overrides`` maps dotted spec paths to values ({"optimizer.lr": 0.01,
        "dataset.path": "/data"}); extra keyword arguments are overrides too, with ``__`` for a dot
        (``epochs=3``, ``optimizer__lr=0.01``). ``executor`` is "local" or "slurm"; ``slurm`` maps
        Slurm options to values ({"partition": "main", "time": "2:00:00", "cpus_per_task": 2,
        "mem": "4G", "max_concurrent": 8, "account": "lab", "sbatch_args": ["--qos=low"],
        "batch": "b1"}: runs with the same options and batch queued together become one array
        job). Returns {"id", "state", "run"} (``run``: the new run's record in the short form, as
        in ``list``)."""
        parts = ["submit"] + ([quote(preset)] if preset is not None else [])
        parts = _edits(parts, group=group, tags=tags, priority=priority, hold=hold,
                       overrides=_override_items(overrides, more), spec=spec)
        return self._call(parts + _slurm_args(executor, slurm))

    def list(self, state=None, group=None, tag=None, owner=None):
        """{"runs": [run...], "count": N}; ``state`` is a state or a list of states. Each run is
        the short form of the record ``show`` returns: a subset of its keys with the same values
        and nesting (``run["progress"]["epochs_done"]``)."""
        parts = ["list"]
        if state:
            parts.append("state=" + (state if isinstance(state, str) else ",".join(state)))
        if group is not None:
            parts.append("group=" + quote(str(group)))
        if tag is not None:
            parts.append("tag=" + quote(str(tag)))
        if owner is not None:
            parts.append("owner=" + quote(str(owner)))
        return self._call(parts)

    def show(self, id):
        return self._call(["show", _run_id(id)])

    def pause(self, id, timeout=None):
        """Answers once the run is paused (at its next training step)."""
        return self._call(["pause", _run_id(id)], timeout=timeout)

    def resume(self, id):
        return self._call(["resume", _run_id(id)])

    def cancel(self, id, timeout=None):
        return self._call(["cancel", _run_id(id)], timeout=timeout)

    def hold(self, id):
        return self._call(["hold", _run_id(id)])

    def release(self, id):
        return self._call(["release", _run_id(id)])

    def priority(self, id, n):
        return self._call(["priority", _run_id(id), "%d" % int(n)])

    def set(self, id, group=None, tags=None, priority=None, overrides=None, **more):
        """Changes a run's group, tags (replaced), priority, or — before it has started — its spec
        by dotted-path overrides. Returns the run's record."""
        return self._call(_edits(["set", _run_id(id)], group=group, tags=tags, priority=priority,
                                 overrides=_override_items(overrides, more)))

    def fork(self, id, checkpoint=None, group=None, tags=None, priority=None, hold=False,
             overrides=None, **more):
        """A new run starting from a checkpoint of ``id`` (default: its newest; ``checkpoint`` is a
        file name from ``show(id)["checkpoints"]``), with spec overrides. Group and tags default to
        the source run's."""
        parts = ["fork", _run_id(id)]
        if checkpoint is not None:
            parts.append("checkpoint=" + quote(checkpoint))
        return self._call(_edits(parts, group=group, tags=tags, priority=priority, hold=hold,
                                 overrides=_override_items(overrides, more)))

    def metrics(self, id, kind="epochs", since=0):
        """{"run", "kind", "rows"}: epoch rows (kind="epochs") or pruning events (kind="prunes")
        after epoch ``since``."""
        parts = ["metrics", _run_id(id)]
        if kind != "epochs":
            parts.append("kind=" + quote(kind))
        if since:
            parts.append("since=%d" % int(since))
        return self._call(parts)

    def checkpoint(self, id, timeout=None):
        """Checkpoints a running run at its next step: {"run", "checkpoint": file}."""
        return self._call(["checkpoint", _run_id(id)], timeout=timeout)

    def drain(self, mode="finish"):
        """finish: start nothing new and exit when the running runs complete; now: checkpoint and
        exit; off: withdraw a drain."""
        if mode not in ("finish", "now", "off"):
            raise ValueError("drain mode is finish, now or off")
        return self._call(["drain", mode])

    def quit(self):
        """Says goodbye; the daemon closes the connection (a later request reconnects)."""
        return self.request("quit")

    # -- higher level

    def wait(self, ids, timeout=None, poll=2.0, states=TERMINAL_STATES):
        """Polls ``show`` until every run is in one of ``states`` (default: completed, failed,
        cancelled). Returns {run id: state} (ids in the daemon's r-0042 form). A paused, held or
        interrupted run is not final: waiting for it needs someone to resume it. Raises
        TimeoutError (with the states so far) after ``timeout`` seconds."""
        if isinstance(ids, (str, int, dict)):
            ids = [ids]
        pending = [_run_id(i) for i in ids]
        final = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = {}
            for run in list(pending):
                state = self.show(run)["state"]
                rid = _canonical(run)
                current[rid] = state
                if state in states:
                    final[rid] = state
                    pending.remove(run)
            if not pending:
                return final
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("runs not finished after %s s: %s" % (timeout, dict(current)))
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    def group_metrics(self, group, kind="epochs", state=None, spec_fields=()):
        """The metrics of every run in ``group`` as one list of flat dicts, one per epoch
        (``kind="epochs"``) or per pruning event (``kind="prunes"``), ready for
        ``pandas.DataFrame(rows)`` (pandas is not needed here; csv.DictWriter takes them too).

        Runs come in id order (``state``: only runs in that state or list of states; ``group=None``:
        every run), each run's rows in epoch order. Every row starts with the run's ``run`` id,
        ``group``, ``tags`` (comma-separated), ``state`` and ``seed``, then one column per dotted
        spec path in ``spec_fields`` (e.g. ``"pruning.target"``, ``"pruning.layers.3.period"``;
        None where the spec has no such value), then the row of ``metrics`` flattened by
        ``flatten_row`` (``epoch``, ``train_acc``, ``pre_test_acc``, ``test_acc``, ...,
        ``pruned.<layer>``, ``prune_event.t_pre``, ``prune_event.layers.<layer>.k``, ...). Rows
        without a pruning event simply lack those columns (NaN in a DataFrame). Costs one ``list``,
        then one ``show`` and one ``metrics`` request per run."""
        if kind not in ("epochs", "prunes"):
            raise ValueError("kind is epochs or prunes")
        rows = []
        for brief in self.list(state=state, group=group)["runs"]:
            record = self.show(brief["id"])
            spec = record.get("spec") or {}
            head = {"run": record["id"], "group": record.get("group"), "tags": ",".join(record.get("tags") or []),
                    "state": record.get("state"), "seed": spec.get("seed")}
            for path in spec_fields:
                head[path] = _spec_value(spec, path)
            for row in self.metrics(record["id"], kind=kind)["rows"]:
                flat = dict(head)
                flat.update(flatten_row(row))
                rows.append(flat)
        return rows

    def events(self, since=None, run=None, group=None, reconnect=True, retry_for=60.0, timeout=None):
        """Subscribes on a connection of its own and returns an ``EventStream``: iterate it for
        event dicts (each with "seq", "time", "type" and often "run"). See ``EventStream``."""
        return EventStream(self.path, since=since, run=run, group=group, reconnect=reconnect,
                           retry_for=retry_for, timeout=timeout, connect_timeout=self.timeout)


def flatten_row(row, prefix=""):
    """A metrics row (or any JSON object) as a flat dict for a table: nested objects become dotted
    column names ({"pruned": {"features.conv3": 8}} -> {"pruned.features.conv3": 8}); a list of
    per-layer objects ({"layer": NAME, "k": 8, "mean_score": 0.5}, as in a pruning event) becomes
    one column per layer and field ("layers.features.conv3.k"); other values, lists included, are
    kept as they are."""
    flat = {}
    for key, value in row.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            flat.update(flatten_row(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "layer" in v for v in value):
            for item in value:
                fields = {k: v for k, v in item.items() if k != "layer"}
                flat.update(flatten_row(fields, "%s.%s." % (name, item["layer"])))
        else:
            flat[name] = value
    return flat


def _spec_value(spec, path):
    """The value at a dotted spec path ("optimizer.lr", "pruning.layers.0.fraction"), or None."""
    value = spec
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _canonical(run):
    run = _run_id(run)
    n = int(run[2:] if run.startswith("r-") else run)
    return "r-%04d" % n


class EventStream(_Closing):
    """A subscription, used like a generator: ``for event in stream`` yields event dicts in
    sequence order; ``close()`` ends it (also at the end of a ``with`` block).

    ``since``: replay events after this sequence number that are still in the daemon's ring
    (``since=0``: all of them); None: only new ones. ``run``/``group`` filter on the daemon side.

    When the connection drops (the daemon closed it, a network error, the daemon restarted) and
    ``reconnect`` is true, the stream reconnects — retrying for up to ``retry_for`` seconds
    (None: forever) — and resubscribes with ``since=<last seq seen>``, so no event is missed or
    repeated. Sequence numbers belong to one daemon process: when the greeting's ``boot_id`` has
    changed the daemon restarted, the old numbering means nothing, and the stream resubscribes
    with ``since=0`` to receive the new daemon's events from its start (the old daemon's events
    after the last one seen are gone; the new daemon's own state events, such as recovered runs
    being queued again, show what happened). ``restarts`` counts such changes; ``lost`` adds up
    the events the daemon reported as already dropped from its ring (a reader that fell too far
    behind); ``reconnects`` counts reconnections.

    ``timeout``: raise TimeoutError when no event arrives for that many seconds (None: wait).
    """

    def __init__(self, path, since=None, run=None, group=None, reconnect=True, retry_for=60.0,
                 timeout=None, connect_timeout=30):
        self.path = path
        self.run = _run_id(run) if run is not None else None
        self.group = group
        self.reconnect = reconnect
        self.retry_for = retry_for
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.boot_id = None
        self.last_seq = since        # resubscribe after this
        self.subscribed = None       # the latest subscribe reply
        self.lost = 0
        self.reconnects = 0
        self.restarts = 0
        self._conn = None
        self._closed = False
        self._subscribe(since)

    def _subscribe(self, since):
        conn, hello = _connect(self.path, self.connect_timeout)
        try:
            boot = hello.get("boot_id")
            restarted = self.boot_id is not None and boot != self.boot_id
            if restarted:
                since = 0
            parts = ["subscribe"]
            if since is not None:
                parts.append("since=%d" % since)
            if self.run is not None:
                parts.append("run=" + self.run)
            if self.group is not None:
                parts.append("group=" + quote(str(self.group)))
            conn.send_line(" ".join(parts))
            marker, reply = _parse_reply(conn.read_line())
            if marker != "OK":
                raise ProtocolViolation("unexpected %s reply to subscribe" % marker)
        except BaseException:
            conn.close()
            raise
        if restarted:
            self.restarts += 1
        self.boot_id = reply.get("boot_id", boot)
        self.subscribed = reply
        self.lost += int(reply.get("lost", 0))
        if self.last_seq is None or since == 0:
            # Events from here on; remember where "here" is so a reconnect replays the gap.
            self.last_seq = since if since is not None else int(reply["next_seq"]) - 1
        conn.settimeout(self.timeout)
        self._conn = conn

    def _reconnect(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        deadline = None if self.retry_for is None else time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                self._subscribe(self.last_seq)
                self.reconnects += 1
                return
            except (OSError, ProtocolViolation, PrunedError) as e:
                if isinstance(e, PrunedError) and e.code not in ("BUSY", "SHUTTING_DOWN"):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise ConnectionError("cannot resubscribe on %s for %s s: %s" % (self.path, self.retry_for, e))
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._closed:
                raise StopIteration
            try:
                marker, payload = _parse_reply(self._conn.read_line())
            except socket.timeout:
                raise TimeoutError("no event for %s s" % self.timeout)
            except (OSError, ProtocolViolation) as e:
                if self._closed:
                    raise StopIteration
                if not self.reconnect:
                    self.close()
                    raise ConnectionError("the event subscription dropped: %s" % e)
                self._reconnect()
                continue
            if marker != "EVENT":
                continue
            seq = payload.get("seq")
            if isinstance(seq, (int, float)):
                if self.last_seq is not None and seq <= self.last_seq:
                    continue    # never yield an event twice
                self.last_seq = int(seq)
            return payload

    def send(self, _value):
        return next(self)

    def close(self):
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# ----------------------------------------------------------------------------------------------
# A small command line: send raw request lines, or follow events.


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Send request lines to the pruned daemon and print the replies as JSON.")
    p.add_argument("-s", "--socket", help="socket path (default: $PRUNED_SOCKET or the usual places)")
    p.add_argument("--events", action="store_true", help="follow events (subscribe) instead of sending requests")
    p.add_argument("--since", type=int, help="with --events: replay after this sequence number")
    p.add_argument("--run", help="with --events: only this run's events")
    p.add_argument("--group", help="with --events: only this group's events")
    p.add_argument("request", nargs="*", help="request lines, e.g. 'list state=running'")
    a = p.parse_args(argv)
    if a.events:
        try:
            for ev in Client(a.socket).events(since=a.since, run=a.run, group=a.group, retry_for=None):
                print(json.dumps(ev), flush=True)
        except KeyboardInterrupt:
            pass
        return 0
    status = 0
    c = Client(a.socket)
    for line in a.request or [l.rstrip("\n") for l in sys.stdin if l.strip()]:
        try:
            print(json.dumps(c.request(line, timeout=None), indent=2))
        except PrunedError as e:
            print("ERR %s %s" % (e.code, e.message), file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
