"""Tests of pruned_client.py against a real daemon binary.

    PRUNED_BIN=.build/debug/pruned python3 -m unittest clients/python/test_pruned_client.py

Each test class starts `pruned daemon` on a temporary state directory and a short socket path
under /tmp. Runs are submitted held where training is not the point; a few tiny real runs
(Conv4 at quarter width on a slice of Fashion-MNIST, a few seconds each) cover wait, metrics,
events, fork and the example sweep. Needs the daemon binary (PRUNED_BIN, default
.build/debug/pruned) and Fashion-MNIST (PRUNED_FASHION_MNIST, default
/usr/share/datasets/fashion-mnist); the tests are skipped without them.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import pruned_client  # noqa: E402
from pruned_client import (Client, PrunedError, UnsafeSocketError, check_socket_path, default_socket_path,  # noqa: E402
                           flatten_row, quote, render_value, socket_rule)

BIN = os.environ.get("PRUNED_BIN") or os.path.join(ROOT, ".build", "debug", "pruned")
DATA = os.environ.get("PRUNED_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
HAVE_BIN = os.access(BIN, os.X_OK)
HAVE_DATA = os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
SKIP_REASON = "needs the daemon binary (PRUNED_BIN=%s) and Fashion-MNIST (%s)" % (BIN, DATA)


def tiny_spec(epochs=2, seed=1, train_limit=1024, pruning=True, every_steps=4):
    spec = {
        "model": "conv4", "width": 0.25,
        "dataset": {"kind": "fashion_mnist", "path": DATA, "train_limit": train_limit, "test_limit": 256},
        "epochs": epochs, "batch_size": 64, "seed": seed, "checkpoint": {"every_steps": every_steps},
    }
    if pruning:
        spec["pruning"] = {"score": "l2", "target": "smallest",
                           "layers": [{"name": "features.conv3", "fraction": 0.25, "start": 0, "end": 1}]}
    return spec


class Daemon:
    """A `pruned daemon` process on a temporary state directory."""

    def __init__(self, tmp, *extra):
        self.tmp = tmp
        self.socket = os.path.join(tmp, "s")
        self.log_path = os.path.join(tmp, "daemon.log")
        self.start(*extra)

    def start(self, *extra):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "daemon", "--state-dir", os.path.join(self.tmp, "state"), "--socket", self.socket,
             "--threads", "2"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the daemon exited (%s):\n%s" % (self.proc.returncode, self.log_text()))
            try:
                Client(self.socket, timeout=5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the daemon did not answer on %s:\n%s" % (self.socket, self.log_text()))

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def wait_exit(self, seconds=30):
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.wait_exit(60)
        except subprocess.TimeoutExpired:
            pass


def collect_until(stream, done, limit=500):
    """Events from `stream` up to and including the first for which done(event) holds."""
    out = []
    for ev in stream:
        out.append(ev)
        if done(ev) or len(out) >= limit:
            return out
    return out


def state_event(run, to):
    return lambda ev: ev.get("type") == "state" and ev.get("run") == run and ev.get("to") == to


class PureTests(unittest.TestCase):
    def test_slurm_arguments(self):
        parts = pruned_client._slurm_args("slurm", {"partition": "main", "time": "2:00:00", "sbatch_args": ["--qos=low"]})
        self.assertEqual(parts, ["executor=slurm", "slurm.partition=main", "slurm.time=2:00:00", 'slurm.sbatch_arg="--qos=low"'])
        with self.assertRaises(ValueError):
            pruned_client._slurm_args("cloud", None)
        with self.assertRaises(ValueError):
            pruned_client._slurm_args(None, {"bogus": 1})

    """Rendering and configuration; no daemon needed."""

    def test_flatten_row_makes_table_columns(self):
        row = {"epoch": 2, "test_acc": 81.5, "pruned": {"features.conv3": 8, "features.conv4": 0}, "p_count": 8,
               "prune_event": {"layers": [{"layer": "features.conv3", "k": 8, "mean_score": 0.25}],
                               "t_pre": 82.0, "t_post": 81.5, "stability": 99.39}}
        self.assertEqual(flatten_row(row), {
            "epoch": 2, "test_acc": 81.5, "pruned.features.conv3": 8, "pruned.features.conv4": 0, "p_count": 8,
            "prune_event.layers.features.conv3.k": 8, "prune_event.layers.features.conv3.mean_score": 0.25,
            "prune_event.t_pre": 82.0, "prune_event.t_post": 81.5, "prune_event.stability": 99.39})
        # A pruning event of kind=prunes, and lists that are not per-layer objects.
        self.assertEqual(flatten_row({"epoch": 1, "layers": [{"layer": "a", "k": 1}, {"layer": "b", "k": 2}]}),
                         {"epoch": 1, "layers.a.k": 1, "layers.b.k": 2})
        self.assertEqual(flatten_row({"x": [1, 2], "y": []}), {"x": [1, 2], "y": []})
        self.assertEqual(pruned_client._spec_value({"pruning": {"layers": [{"period": 4}]}}, "pruning.layers.0.period"), 4)
        self.assertIsNone(pruned_client._spec_value({"pruning": {"layers": []}}, "pruning.layers.0.period"))

    def test_quote_mirrors_the_daemons_lexer(self):
        self.assertEqual(quote("plain"), "plain")
        self.assertEqual(quote("a.b-c:d@e+f/g"), "a.b-c:d@e+f/g")
        for s, q in [("", '""'), ("a b", '"a b"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'),
                     ("x=y", '"x=y"'), ("12", '"12"'), ("-3.5e2", '"-3.5e2"'), ("true", '"true"'), ("null", '"null"'),
                     ("{not json", '"{not json"'), ("[x", '"[x"'), ("line\nbreak\ttab", '"line\\nbreak\\ttab"')]:
            self.assertEqual(quote(s), q, s)
        self.assertEqual(quote("1a"), "1a")  # not numeric-looking: stays bare
        with self.assertRaises(ValueError):
            quote("bell\x07")
        with self.assertRaises(ValueError):
            quote("del\x7f")

    def test_render_value(self):
        self.assertEqual(render_value(True), "true")
        self.assertEqual(render_value(None), "null")
        self.assertEqual(render_value(3), "3")
        self.assertEqual(render_value(0.001), "0.001")
        self.assertEqual(render_value({"a": [1, "b c"]}), '{"a":[1,"b c"]}')
        self.assertEqual(render_value({"s": "x\x7fy"}), '{"s":"x\\u007fy"}')
        self.assertEqual(render_value("0.5"), '"0.5"')
        with self.assertRaises(ValueError):
            render_value(float("nan"))
        with self.assertRaises(TypeError):
            render_value(object())

    def test_request_building_validates_locally(self):
        with self.assertRaises(ValueError):
            pruned_client._override_items({"bad key": 1}, {})
        with self.assertRaises(ValueError):
            pruned_client._override_items({"group": "x"}, {})
        self.assertEqual(pruned_client._override_items({"optimizer.lr": 0.1}, {"dataset__train_limit": 5}),
                         [("optimizer.lr", 0.1), ("dataset.train_limit", 5)])
        self.assertEqual(pruned_client._run_id(7), "r-0007")
        self.assertEqual(pruned_client._run_id("r-0012"), "r-0012")
        with self.assertRaises(ValueError):
            pruned_client._run_id("r-12; quit")

    def test_default_socket_path(self):
        none = lambda p: False  # noqa: E731
        self.assertEqual(default_socket_path({"PRUNED_SOCKET": "/x/s"}, none, 5), "/x/s")
        self.assertEqual(default_socket_path({}, lambda p: p == "/run/pruned/control.sock", 5), "/run/pruned/control.sock")
        self.assertEqual(default_socket_path({"XDG_RUNTIME_DIR": "/run/user/5"}, lambda p: p.startswith("/run/user"), 5),
                         "/run/user/5/pruned/control.sock")
        self.assertEqual(default_socket_path({"XDG_RUNTIME_DIR": "/run/user/5"}, lambda p: p.startswith("/tmp"), 5),
                         "/tmp/pruned-5/control.sock")
        self.assertEqual(default_socket_path({"XDG_RUNTIME_DIR": "/run/user/5"}, none, 5), "/run/user/5/pruned/control.sock")
        self.assertEqual(default_socket_path({}, none, 5), "/tmp/pruned-5/control.sock")


class SocketDirectoryTests(unittest.TestCase):
    """A socket directory another user could have created or can write to may hold a fake daemon
    that would receive our requests: the client refuses it before connecting."""

    def fake_daemon(self, directory):
        """A listening socket at DIRECTORY/s (the would-be fake daemon); nobody must connect to it."""
        path = os.path.join(directory, "s")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        srv.setblocking(False)
        self.addCleanup(srv.close)
        return path, srv

    def assert_never_connected(self, srv):
        with self.assertRaises(BlockingIOError):
            srv.accept()

    def temp(self, mode=0o755):
        d = tempfile.mkdtemp(prefix="pcs-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, mode)
        return d

    def test_rule_follows_the_location(self):
        env = {"XDG_RUNTIME_DIR": "/run/user/5"}
        self.assertEqual(socket_rule("/tmp/pruned-5/control.sock", {}, 5), "private")
        self.assertEqual(socket_rule("/tmp//pruned-5/./control.sock", {}, 5), "private")
        self.assertEqual(socket_rule("/run/user/5/pruned/control.sock", env, 5), "private")
        self.assertEqual(socket_rule("/tmp/pruned-6/control.sock", {}, 5), "shared")
        self.assertEqual(socket_rule("/run/pruned/control.sock", env, 5), "shared")
        self.assertEqual(socket_rule("/srv/x/s", env, 5), "shared")

    def test_squatted_per_user_directory_is_refused(self):
        base = self.temp()
        d = os.path.join(base, "pruned")
        os.mkdir(d)
        path, srv = self.fake_daemon(d)
        env = {"XDG_RUNTIME_DIR": base}
        self.assertEqual(socket_rule(path, env), "private")
        for mode in (0o777, 0o750, 0o701):
            os.chmod(d, mode)
            with self.assertRaises(UnsafeSocketError) as cm:
                check_socket_path(path, env)
            self.assertIn("refusing the socket directory %s: owned by uid %d" % (d, os.geteuid()), str(cm.exception))
            self.assertIn("with mode %04o; expected a directory owned by uid %d" % (mode, os.geteuid()), str(cm.exception))
            self.assertIn("with mode 0700", str(cm.exception))
        # Found by discovery ($XDG_RUNTIME_DIR), the squatted directory is refused by Client() too.
        saved = dict(os.environ)
        try:
            os.environ.pop("PRUNED_SOCKET", None)
            os.environ["XDG_RUNTIME_DIR"] = base
            os.chmod(d, 0o777)
            # Discovery prefers the system socket and then a user-mode daemon's /tmp/pruned-UID one:
            # with either present (a daemon running on this machine), this part cannot run.
            user_tmp = "/tmp/pruned-%d/control.sock" % os.getuid()
            if not os.path.exists(pruned_client.SYSTEM_SOCKET) and not os.path.exists(user_tmp):
                self.assertEqual(default_socket_path(), path[:-1] + "control.sock")
                os.rename(path, os.path.join(d, "control.sock"))
                with self.assertRaises(UnsafeSocketError):
                    Client(timeout=2)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.assert_never_connected(srv)
        if os.geteuid() == 0:
            # Another user's 0700 directory (tests run as root can make one).
            os.chmod(d, 0o700)
            os.chown(d, 65534, 65534)
            with self.assertRaises(UnsafeSocketError) as cm:
                check_socket_path(os.path.join(d, "control.sock"), env)
            self.assertIn("owned by uid 65534", str(cm.exception))
            os.chown(d, 0, 0)
        # Exactly 0700 and ours: accepted. A symbolic link to it in its place: refused.
        os.chmod(d, 0o700)
        check_socket_path(os.path.join(d, "control.sock"), env)
        other = self.temp()
        os.symlink(d, os.path.join(other, "pruned"))
        with self.assertRaises(UnsafeSocketError) as cm:
            check_socket_path(os.path.join(other, "pruned", "control.sock"), {"XDG_RUNTIME_DIR": other})
        self.assertIn("symbolic link", str(cm.exception))

    def test_explicit_path_in_a_writable_directory_is_refused(self):
        base = self.temp(0o777)
        path, srv = self.fake_daemon(base)
        with self.assertRaises(UnsafeSocketError) as cm:
            Client(path, timeout=2)
        self.assertIn("refusing the socket directory %s: owned by uid %d" % (base, os.geteuid()), str(cm.exception))
        self.assertIn("mode 0777", str(cm.exception))
        self.assertIn("not writable by group or others", str(cm.exception))
        self.assert_never_connected(srv)
        # Its own directory is fine, but not below a directory others may write to (unless sticky).
        inner = os.path.join(base, "inner")
        os.mkdir(inner, 0o700)
        with self.assertRaises(UnsafeSocketError) as cm:
            check_socket_path(os.path.join(inner, "s"))
        self.assertIn("the directory above it, %s," % os.path.realpath(base), str(cm.exception))
        os.chmod(base, 0o1777)
        check_socket_path(os.path.join(inner, "s"))
        os.chmod(base, 0o755)
        check_socket_path(path)


class FakeDaemonTests(unittest.TestCase):
    """Races a real daemon shows only rarely, scripted on a fake socket server."""

    def serve(self, scripts):
        """Accepts one connection per script; a script maps each received line to reply lines."""
        import threading
        tmp = tempfile.mkdtemp(prefix="pcf-", dir="/tmp")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "s")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        self.addCleanup(srv.close)
        received = []

        def run():
            for greeting, answer in scripts:
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(greeting.encode() + b"\n")
                    f = conn.makefile("rb")
                    for raw in f:
                        received.append(raw.decode().rstrip("\n"))
                        reply, close = answer(received[-1])
                        conn.sendall(reply.encode() + b"\n")
                        if close:
                            break
                    f.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return path, received

    def test_idle_close_crossing_a_request_is_retried(self):
        hello = 'HELLO {"server":"pruned","protocol":1,"boot_id":"b1"}'
        path, received = self.serve([
            (hello, lambda line: ("ERR TIMEOUT idle for 900 s; closing", True)),
            (hello, lambda line: ('OK {"pong":true}', False)),
        ])
        c = Client(path, timeout=5)
        self.assertEqual(c.ping(), {"pong": True})
        self.assertEqual(received, ["ping", "ping"])
        c.close()

    def test_error_greeting_raises(self):
        path, _ = self.serve([("ERR BUSY too many connections (128); try again later", lambda line: ("", True))])
        with self.assertRaises(PrunedError) as cm:
            Client(path, timeout=5)
        self.assertEqual(cm.exception.code, "BUSY")


@unittest.skipUnless(HAVE_BIN and HAVE_DATA, SKIP_REASON)
class DaemonClientTests(unittest.TestCase):
    """Every convenience method against one daemon (one training slot)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pct-", dir="/tmp")
        cls.daemon = Daemon(cls.tmp)
        cls.c = Client(cls.daemon.socket)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def submit_held(self, **kw):
        return self.c.submit(spec=tiny_spec(pruning=False), hold=True, **kw)

    def test_greeting_and_reads(self):
        h = self.c.hello
        self.assertEqual(h["server"], "pruned")
        self.assertEqual(h["protocol"], 1)
        self.assertTrue(h["boot_id"])
        self.assertGreater(h["max_line"], 1000)
        self.assertIs(self.c.ping()["pong"], True)
        v = self.c.version()
        self.assertEqual(v["protocol"], 1)
        self.assertEqual(v["boot_id"], h["boot_id"])
        self.assertIn("pause", [x["command"] for x in self.c.help()["commands"]])
        self.assertEqual(self.c.help("pause")["usage"], "pause ID")
        st = self.c.status()
        self.assertIn("held", st["runs"])
        self.assertEqual(st["boot_id"], h["boot_id"])

    def test_run_records_have_one_shape(self):
        # list, submit's "run" and status's "running" carry the short form of show's record: the
        # same keys with the same values and nesting, fewer of them.
        r = self.submit_held(group="shape", tags=["one"])
        shown = self.c.show(r["id"])
        listed = [x for x in self.c.list(group="shape")["runs"] if x["id"] == r["id"]][0]
        for short in (r["run"], listed):
            self.assertIn("progress", short)
            self.assertNotIn("epochs_done", short)
            self.assertLess(set(short), set(shown))
            self.assertEqual({k: shown[k] for k in short}, short)
        self.assertEqual(shown["progress"]["epochs"], 2)
        for running in self.c.status()["running"]:
            self.assertIn("progress", running)
        self.c.cancel(r["id"])

    def test_quoting_round_trips(self):
        name = 'night "A" run \\ with = signs, {braces} [x]\nand a\ttab'
        r = self.c.submit(spec=tiny_spec(pruning=False), hold=True, group="g:1@x+y", tags=["1.5", "true", "a-b"],
                          overrides={"name": name})
        s = self.c.show(r["id"])
        self.assertEqual(s["name"], name)
        self.assertEqual(s["spec"]["name"], name)
        self.assertEqual(s["group"], "g:1@x+y")
        self.assertEqual(s["tags"], ["1.5", "true", "a-b"])
        # Strings that look like numbers or literals stay strings; JSON values stay JSON.
        r2 = self.submit_held(overrides={"name": "0.5", "lr_milestones": [5, 9], "optimizer": {"kind": "sgd", "lr": 0.05}},
                              group="123")
        s2 = self.c.show(r2["id"])
        self.assertEqual(s2["name"], "0.5")
        self.assertEqual(s2["group"], "123")
        self.assertEqual(s2["spec"]["lr_milestones"], [5, 9])
        self.assertEqual(s2["spec"]["optimizer"]["kind"], "sgd")
        self.assertEqual(s2["spec"]["optimizer"]["lr"], 0.05)
        # An inline spec whose strings hold brackets, quotes and spaces (and a DEL) survives.
        spec = tiny_spec(pruning=False)
        spec["name"] = 'x} {"y": [1, 2]} \\ \x7f end'
        r3 = self.c.submit(spec=spec, hold=True)
        self.assertEqual(self.c.show(r3["id"])["name"], spec["name"])
        # set quotes the same way.
        self.c.set(r3["id"], overrides={"name": 'set "me"'}, tags="q,r")
        s3 = self.c.show(r3["id"])
        self.assertEqual((s3["name"], s3["tags"]), ('set "me"', ["q", "r"]))
        for run in (r, r2, r3):
            self.assertEqual(self.c.cancel(run["id"])["state"], "cancelled")

    def test_errors_raise_pruned_error_with_the_code(self):
        cases = [
            (lambda: self.c.show("r-9999"), "NOT_FOUND"),
            (lambda: self.c.request("frobnicate"), "UNKNOWN_COMMAND"),
            (lambda: self.c.submit(spec=dict(tiny_spec(), bogus=1)), "BAD_SPEC"),
            (lambda: self.c.submit(spec=tiny_spec(), overrides={"optimizer.lr": -1}), "BAD_SPEC"),
            (lambda: self.c.submit("NO_SUCH_PRESET"), "NOT_FOUND"),
            (lambda: self.c.submit(spec=tiny_spec(), group="has space"), "BAD_ARGUMENT"),
            (lambda: self.c.list(state="sleeping"), "BAD_ARGUMENT"),
            (lambda: self.c.metrics(9999), "NOT_FOUND"),
            (lambda: self.c.fork(9999), "NOT_FOUND"),
            (lambda: self.c.metrics(1, kind="weights"), "BAD_ARGUMENT"),
        ]
        for call, code in cases:
            with self.assertRaises(PrunedError) as cm:
                call()
            self.assertEqual(cm.exception.code, code, cm.exception.message)
            self.assertTrue(cm.exception.message)
        # The connection is still in step after errors.
        self.assertIs(self.c.ping()["pong"], True)

    def test_quit_then_reconnect(self):
        c = Client(self.daemon.socket)
        self.assertIs(c.quit()["bye"], True)
        self.assertIs(c.ping()["pong"], True)   # reopened transparently before the request
        c.close()

    def test_drain_off(self):
        self.assertIsNone(self.c.drain("off")["draining"])
        with self.assertRaises(ValueError):
            self.c.drain("later")

    def test_wait_times_out_on_a_held_run(self):
        r = self.submit_held()
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            self.c.wait([r["id"]], timeout=0.5, poll=0.1)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.c.wait(r["id"], states=("held",)), {r["id"]: "held"})
        self.c.cancel(r["id"])
        self.assertEqual(self.c.wait([r["id"]], timeout=5), {r["id"]: "cancelled"})

    def test_run_control_verbs(self):
        g = "ctl-%d" % os.getpid()
        blocker = self.c.submit(spec=tiny_spec(epochs=50, pruning=False), group=g, tags=["long"])["id"]
        self.c.wait(blocker, timeout=30, poll=0.05, states=("running",))
        x = self.submit_held(group=g, tags=["x"], priority=2)["id"]
        self.assertEqual(self.c.show(x)["state"], "held")
        # The only slot is busy: release queues, hold holds again (idempotently).
        self.assertEqual(self.c.release(x)["state"], "queued")
        self.assertEqual(self.c.hold(x)["state"], "held")
        self.assertIs(self.c.hold(x)["changed"], False)
        self.assertEqual(self.c.priority(x, 7)["priority"], 7)
        edited = self.c.set(x, group=g + "-b", tags=["y", "z"], overrides={"epochs": 3, "optimizer.lr": 0.002})
        self.assertEqual((edited["group"], edited["tags"]), (g + "-b", ["y", "z"]))
        self.assertEqual(edited["spec"]["epochs"], 3)
        self.assertEqual(edited["spec"]["optimizer"]["lr"], 0.002)
        self.assertEqual([r["id"] for r in self.c.list(group=g + "-b")["runs"]], [x])
        cleared = self.c.set(x, group="", tags=[])
        self.assertEqual((cleared["group"], cleared["tags"]), (None, []))
        self.c.set(x, group=g + "-b", tags=["y", "z"])
        self.assertEqual([r["id"] for r in self.c.list(tag="long")["runs"]], [blocker])
        self.assertEqual([r["id"] for r in self.c.list(state=["running", "paused"], group=g)["runs"]], [blocker])
        self.assertIn(x, [r["id"] for r in self.c.list(owner=os.getuid(), state="held")["runs"]])
        # A running run: checkpoint now, pause (answers once paused), resume, cancel.
        ck = self.c.checkpoint(blocker)
        self.assertEqual(ck["run"], blocker)
        self.assertIn(ck["checkpoint"], self.c.show(blocker)["checkpoints"])
        with self.assertRaises(PrunedError) as cm:
            self.c.set(blocker, overrides={"epochs": 3})
        self.assertEqual(cm.exception.code, "BAD_STATE")
        self.assertEqual(self.c.pause(blocker)["state"], "paused")
        self.assertIs(self.c.pause(blocker)["changed"], False)
        self.assertGreaterEqual(self.c.status()["runs"]["paused"], 1)
        with self.assertRaises(PrunedError) as cm:
            self.c.checkpoint(blocker)
        self.assertEqual(cm.exception.code, "BAD_STATE")
        with self.assertRaises(PrunedError) as cm:
            self.c.release(blocker)
        self.assertEqual(cm.exception.code, "BAD_STATE")
        self.assertIn(self.c.resume(blocker)["state"], ("queued", "running"))
        self.assertEqual(self.c.cancel(blocker)["state"], "cancelled")
        self.assertEqual(self.c.cancel(x)["state"], "cancelled")
        self.assertIs(self.c.cancel(x)["changed"], False)

    def test_training_run_wait_metrics_events_fork(self):
        g = "train-%d" % os.getpid()
        stream = self.c.events(group=g, timeout=60)
        r = self.c.submit(spec=tiny_spec(train_limit=512, every_steps=3), group=g, tags=["tiny"])["id"]
        first = next(stream)
        self.assertEqual((first["type"], first["run"], first["to"]), ("state", r, "queued"))
        # Drop the subscription under the stream: it reconnects and resubscribes with since=.
        stream._conn.sock.shutdown(socket.SHUT_RDWR)
        got = [first] + collect_until(stream, state_event(r, "completed"))
        self.assertEqual(stream.reconnects, 1)
        self.assertEqual(stream.restarts, 0)
        self.assertEqual(self.c.wait([r], timeout=120, poll=0.2), {r: "completed"})
        # A fresh subscription replaying from the start sees exactly the same events.
        with self.c.events(since=0, group=g, reconnect=False, timeout=10) as ref:
            want = collect_until(ref, state_event(r, "completed"))
        self.assertEqual([e["seq"] for e in got], [e["seq"] for e in want])
        self.assertEqual(got, want)
        seqs = [e["seq"] for e in got]
        self.assertEqual(seqs, sorted(set(seqs)))
        types = {e["type"] for e in got}
        self.assertTrue({"state", "epoch", "prune", "checkpoint"} <= types, types)
        stream.close()
        self.assertEqual(list(stream), [])
        # Replay from the middle: since=S gives the events after S.
        with self.c.events(since=seqs[2], group=g, reconnect=False, timeout=10) as mid:
            self.assertEqual(next(mid)["seq"], seqs[3])
        # Events filtered by run.
        with self.c.events(since=0, run=r, reconnect=False, timeout=10) as by_run:
            self.assertEqual([e["seq"] for e in collect_until(by_run, state_event(r, "completed"))], seqs)

        m = self.c.metrics(r)
        self.assertEqual((m["run"], m["kind"]), (r, "epochs"))
        self.assertEqual([row["epoch"] for row in m["rows"]], [1, 2])
        self.assertEqual([row["epoch"] for row in self.c.metrics(r, since=1)["rows"]], [2])
        prunes = self.c.metrics(r, kind="prunes")["rows"]
        self.assertEqual(len(prunes), 2)
        self.assertIn("stability", prunes[0])
        # The group's rows as one flat table (what pandas.DataFrame(rows) takes).
        table = self.c.group_metrics(g, spec_fields=["pruning.target", "pruning.layers.0.fraction"])
        self.assertEqual([(t["run"], t["epoch"]) for t in table], [(r, 1), (r, 2)])
        for t, row in zip(table, m["rows"]):
            self.assertEqual((t["group"], t["tags"], t["state"], t["seed"]), (g, "tiny", "completed", 1))
            self.assertEqual((t["pruning.target"], t["pruning.layers.0.fraction"]), ("smallest", 0.25))
            self.assertEqual((t["train_acc"], t["pre_test_acc"], t["test_acc"]), (row["train_acc"], row["pre_test_acc"], row["test_acc"]))
            self.assertEqual(t["pruned.features.conv3"], row["pruned"]["features.conv3"])
            self.assertFalse(any(isinstance(v, (dict, list)) for v in t.values()), t)
        self.assertEqual(table[0]["prune_event.layers.features.conv3.k"], prunes[0]["layers"][0]["k"])
        events = self.c.group_metrics(g, kind="prunes", state="completed")
        self.assertEqual([e["stability"] for e in events], [p["stability"] for p in prunes])
        self.assertEqual(self.c.group_metrics(g, state="running"), [])
        with self.assertRaises(ValueError):
            self.c.group_metrics(g, kind="weights")
        shown = self.c.show(r)
        self.assertIsInstance(shown["summary"]["best_test_acc"], (int, float))
        self.assertIsInstance(shown["summary"]["mean_stability"], (int, float))
        self.assertTrue(shown["checkpoints"])
        with self.assertRaises(PrunedError) as cm:
            self.c.checkpoint(r)
        self.assertEqual(cm.exception.code, "BAD_STATE")
        with self.assertRaises(PrunedError) as cm:
            self.c.cancel(r)
        self.assertEqual(cm.exception.code, "BAD_STATE")
        # Fork from a named checkpoint, held, with an override; group and tags carry over.
        ck = shown["checkpoints"][0]
        f = self.c.fork(r, checkpoint=ck, hold=True, overrides={"seed": 7})
        fs = self.c.show(f["id"])
        self.assertEqual((fs["state"], fs["fork_of"], fs["fork_checkpoint"]), ("held", r, ck))
        self.assertEqual(fs["spec"]["seed"], 7)
        self.assertEqual((fs["group"], fs["tags"]), (g, ["tiny"]))
        f2 = self.c.fork(r, hold=True, group=g + "-f", tags=["f"])
        self.assertEqual(self.c.show(f2["id"])["fork_checkpoint"], shown["checkpoints"][-1])
        with self.assertRaises(PrunedError) as cm:
            self.c.fork(r, checkpoint="no-such-file.pck")
        self.assertEqual(cm.exception.code, "NOT_FOUND")
        self.c.cancel(f["id"])
        self.c.cancel(f2["id"])

    def test_example_sweep_end_to_end(self):
        g = "sweep-%d" % os.getpid()
        p = subprocess.run(
            [sys.executable, os.path.join(HERE, "example_sweep.py"), "--socket", self.daemon.socket, "--data", DATA,
             "--seeds", "1", "--train-limit", "256", "--test-limit", "128", "--group", g, "--poll", "0.2",
             "--timeout", "300", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=400)
        self.assertEqual(p.returncode, 0, p.stdout)
        result = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(result["group"], g)
        self.assertEqual(sorted(r["target"] for r in result["runs"]), ["largest", "smallest"])
        for r in result["runs"]:
            self.assertEqual(r["state"], "completed")
            self.assertIsInstance(r["best_test_acc"], (int, float))
            self.assertIsInstance(r["mean_stability"], (int, float))
            self.assertEqual(self.c.show(r["id"])["spec"]["pruning"]["target"], r["target"])
        self.assertIn("best_acc", p.stdout)
        self.assertEqual(self.c.list(group=g, state="completed")["count"], 2)

    def test_command_line(self):
        cli = [sys.executable, os.path.join(HERE, "pruned_client.py"), "-s", self.daemon.socket]
        p = subprocess.run(cli + ["ping", "version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"pong": true', p.stdout)
        p = subprocess.run(cli + ["show r-9999"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ERR NOT_FOUND", p.stderr)


@unittest.skipUnless(HAVE_BIN and HAVE_DATA, SKIP_REASON)
class DaemonRestartTests(unittest.TestCase):
    """Connections the daemon closes: idle timeouts, drain now, a restart with a new boot_id."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pcr-", dir="/tmp")
        self.daemon = Daemon(self.tmp, "--idle-timeout", "1")

    def tearDown(self):
        self.daemon.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_idle_close_is_recovered_before_the_next_request(self):
        c = Client(self.daemon.socket)
        self.assertIs(c.ping()["pong"], True)
        # A subscription is not idle-closed; a plain connection is.
        with c.events(since=0, timeout=3) as s:
            time.sleep(2.5)   # meanwhile the daemon sends ERR TIMEOUT on c's connection and closes it
            self.assertIs(c.ping()["pong"], True)   # reopened before the request
            h = c.submit(spec=tiny_spec(), hold=True)["id"]
            self.assertEqual(collect_until(s, state_event(h, "held"))[-1]["run"], h)
            self.assertEqual(s.reconnects, 0)
        c.close()

    def test_events_follow_a_daemon_restart(self):
        c = Client(self.daemon.socket)
        first_boot = c.hello["boot_id"]
        stream = c.events(since=0, timeout=60)
        h1 = c.submit(spec=tiny_spec(), hold=True)["id"]
        collect_until(stream, state_event(h1, "held"))
        seq_before = stream.last_seq
        self.assertEqual(c.drain("now")["draining"], "now")
        self.daemon.wait_exit(30)
        self.daemon.start("--idle-timeout", "1")
        h2 = c.submit(spec=tiny_spec(), hold=True)["id"]   # the client reconnects by itself
        self.assertNotEqual(c.hello["boot_id"], first_boot)
        after = collect_until(stream, state_event(h2, "held"))
        self.assertEqual(stream.restarts, 1)
        self.assertEqual(stream.reconnects, 1)
        self.assertEqual(stream.boot_id, c.hello["boot_id"])
        # The old daemon's last event (it is stopping) arrives before it exits; the new daemon
        # numbers from 1 again and the stream started over with since=0.
        self.assertEqual(after[0]["type"], "daemon")
        self.assertEqual(after[0]["what"], "stopping")
        self.assertEqual(after[0]["seq"], seq_before + 1)
        self.assertEqual(after[1]["seq"], 1)
        self.assertEqual(c.show(h1)["state"], "held")   # durable across the restart
        stream.close()
        c.close()

    def test_no_reconnect_raises(self):
        c = Client(self.daemon.socket)
        stream = c.events(reconnect=False, timeout=10)
        stream._conn.sock.shutdown(socket.SHUT_RDWR)
        with self.assertRaises(ConnectionError):
            next(stream)
        c.close()


if __name__ == "__main__":
    unittest.main()
