"""Plugin loading runs only what the configuration asks for: `<name>.so` for each plugin
some vhost enables (nothing else is opened, so no stray constructor runs, not even under
--check), hidden files skipped, other `*.so` reported as warnings by --check; plugin files
and directories writable by anyone but root or the gateway's user are refused, and a
symlinked plugin is checked at its target; a directory above a plugin directory, or above a
symlinked plugin's target directory, that others could change is warned of."""
import json
import os
import shutil
import subprocess

import gw

STRAY_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void ran(void)
{
	FILE *f = fopen(MARKER, "w");
	if (f) {
		fputs("constructor ran\n", f);
		fclose(f);
	}
}
"""


def stray_so(path, marker):
    src = path.with_suffix(".c")
    src.write_text(STRAY_C)
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(path), str(src),
                        '-DMARKER="%s"' % marker], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return path


def plugin_dir(tmp_path, name="plugins", plugins=("example",)):
    d = tmp_path / name
    d.mkdir(mode=0o755)
    for p in plugins:
        shutil.copy(gw.PLUGIN_DIR / (p + ".so"), d / (p + ".so"))
        os.chmod(d / (p + ".so"), 0o755)
    return d


def write_config(tmp_path, keys, dirs, plugins=None):
    c = gw.base_config(keys, [gw.public_vhost(keys, tls=False,
                                              plugins=plugins or {"example": {"greeting": "hi"}})],
                       plugin_dirs=dirs)
    return gw.write_json(tmp_path / "gateway.json", c), c


def echo_works(g):
    with g.connect(g.token()) as ws:
        gw.probe(ws)


# ------------------------------------------------------------------ what is opened
def test_stray_so_does_not_run_under_check_and_is_reported(binary, keys, tmp_path):
    d = plugin_dir(tmp_path, plugins=("example", "chat"))
    marker = tmp_path / "stray-ran"
    stray_so(d / "stray.so", marker)
    p, _ = write_config(tmp_path, keys, [d])
    r = gw.check_config(p)
    assert not marker.exists(), "--check ran a stray .so's constructor"
    assert r.returncode == 0, "extra .so files are warnings, not errors:\n%s" % r.stderr
    for so in ("stray.so", "chat.so"):
        lines = [l for l in r.stderr.splitlines() if str(d / so) in l]
        assert lines and "warn" in lines[0] and "not loaded" in lines[0], r.stderr


def test_check_warns_about_extra_so_even_with_log_level_error(binary, keys, tmp_path):
    d = plugin_dir(tmp_path, plugins=("example", "chat"))
    p, c = write_config(tmp_path, keys, [d])
    c["log"] = {"level": "error", "format": "json"}
    gw.write_json(p, c)
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr
    assert any(str(d / "chat.so") in l and json.loads(l)["level"] == "warn"
               for l in r.stderr.splitlines()), r.stderr


def test_stray_so_does_not_run_at_start(make_gateway, keys, tmp_path):
    d = plugin_dir(tmp_path)
    marker = tmp_path / "stray-ran"
    stray_so(d / "stray.so", marker)
    g = make_gateway([gw.public_vhost(keys, tls=False)], plugin_dirs=[d])
    echo_works(g)
    assert not marker.exists(), "the gateway ran a stray .so's constructor"
    assert "stray.so not loaded" in g.log_text(), g.log_tail()


def test_hidden_files_are_skipped(binary, keys, tmp_path):
    d = plugin_dir(tmp_path)
    marker = tmp_path / "hidden-ran"
    stray_so(d / ".hidden.so", marker)
    p, _ = write_config(tmp_path, keys, [d])
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr
    assert not marker.exists(), "a hidden .so ran"
    assert ".hidden.so" not in r.stderr, r.stderr


def test_plugin_file_must_carry_its_name(binary, keys, tmp_path):
    """`other.so` holding the plugin named example is not plugin `other`."""
    d = plugin_dir(tmp_path, plugins=())
    shutil.copy(gw.PLUGIN_DIR / "example.so", d / "other.so")
    p, _ = write_config(tmp_path, keys, [d], plugins={"other": {}})
    r = gw.check_config(p)
    assert r.returncode == 1 and "declares the name 'example', not 'other'" in r.stderr, r.stderr


def test_first_directory_with_the_plugin_wins(make_gateway, keys, tmp_path):
    a = plugin_dir(tmp_path, "a")
    b = plugin_dir(tmp_path, "b")
    g = make_gateway([gw.public_vhost(keys, tls=False)], plugin_dirs=[a, b])
    echo_works(g)
    log = g.log_text()
    assert "loaded from %s" % (a / "example.so") in log, log
    assert "%s not loaded: an earlier plugin directory holds 'example'" % (b / "example.so") in log, log


def test_a_later_copy_says_the_earlier_one_was_refused(binary, keys, tmp_path):
    """The first directory's example.so is refused: the second's copy is not loaded instead,
    and its line says why (it used to say that no vhost enables 'example')."""
    a = plugin_dir(tmp_path, "a")
    b = plugin_dir(tmp_path, "b")
    os.chmod(a / "example.so", 0o775)
    p, _ = write_config(tmp_path, keys, [a, b])
    r = gw.check_config(p)
    assert r.returncode == 1, r.stderr
    assert "plugin %s: group-writable: refused" % (a / "example.so") in r.stderr, r.stderr
    assert ("%s not loaded: 'example' of an earlier plugin directory was refused"
            % (b / "example.so")) in r.stderr, r.stderr
    assert "no vhost enables" not in r.stderr, r.stderr


def test_more_than_64_different_plugins_refused(binary, keys, tmp_path):
    """The loader holds 64 plugins: a 65th name used to be dropped without a word."""
    d = plugin_dir(tmp_path)
    names = {"p%02d" % i: {} for i in range(65)}
    p, _ = write_config(tmp_path, keys, [d], plugins=names)
    gw.refused_everywhere(p, "more than 64 different plugins are enabled")


# ------------------------------------------------------------------ who may write them
def test_group_writable_plugin_refused(binary, keys, tmp_path):
    d = plugin_dir(tmp_path)
    os.chmod(d / "example.so", 0o775)
    p, _ = write_config(tmp_path, keys, [d])
    gw.refused_everywhere(p, "plugin %s: group-writable: refused" % (d / "example.so"))


def test_world_writable_plugin_directory_refused(binary, keys, tmp_path):
    d = plugin_dir(tmp_path)
    os.chmod(d, 0o777)
    p, _ = write_config(tmp_path, keys, [d])
    gw.refused_everywhere(p, "plugin directory %s: world-writable: refused" % d)


def test_group_writable_directory_without_enabled_plugin_refused(binary, keys, tmp_path):
    """A listed directory is refused even when the plugins come from another one."""
    good = plugin_dir(tmp_path, "good")
    bad = plugin_dir(tmp_path, "bad", plugins=())
    os.chmod(bad, 0o775)
    p, _ = write_config(tmp_path, keys, [good, bad])
    gw.refused_everywhere(p, "plugin directory %s: group-writable: refused" % bad)


def test_plugin_owned_by_another_user_refused(binary, keys, tmp_path):
    d = plugin_dir(tmp_path)
    os.chown(d / "example.so", 65534, 65534)
    p, _ = write_config(tmp_path, keys, [d])
    gw.refused_everywhere(p, "plugin %s: owned by uid 65534" % (d / "example.so"))


# ------------------------------------------------------------------ the directories above
def above_lines(stderr, d, top):
    return [l for l in stderr.splitlines()
            if l.find("plugin directory %s: %s above it is " % (d, top)) >= 0]


def test_a_directory_above_that_others_could_change_is_warned_of(make_gateway, keys, tmp_path):
    """A directory above a plugin directory that is group- or world-writable, or owned by
    another user, lets them move the plugin directory aside and put their own in its place:
    a warning at --check and at start (a build tree often lies in such a place); the
    plugins still load."""
    cases = {"g": (0o775, None, "group-writable"), "w": (0o777, None, "world-writable"),
             "o": (0o755, 65534, "owned by uid 65534, neither root nor the gateway's user")}
    for name, (mode, uid, why) in cases.items():
        top = tmp_path / name
        top.mkdir()
        d = plugin_dir(top)
        os.chmod(top, mode)
        if uid is not None:
            os.chown(top, uid, uid)
        p, _ = write_config(top, keys, [d])
        r = gw.check_config(p)
        assert r.returncode == 0, r.stderr
        lines = above_lines(r.stderr, d, top)
        assert len(lines) == 1 and "warn" in lines[0], r.stderr
        assert lines[0].rstrip().endswith(
            "above it is %s: whoever can change it can replace the plugins" % why), lines
    g = make_gateway([gw.public_vhost(keys, tls=False)], plugin_dirs=[d])
    echo_works(g)
    assert above_lines(g.log_text(), d, top), g.log_tail()


def test_a_sticky_directory_above_is_warned_of_only_when_another_user_owns_it(
        binary, keys, tmp_path):
    """Like /tmp: others may add entries to a sticky directory of root's, not move ours.
    Its owner can, when that is someone else."""
    top = tmp_path / "sticky"
    top.mkdir()
    d = plugin_dir(top)
    os.chmod(top, 0o1777)
    p, _ = write_config(top, keys, [d])
    r = gw.check_config(p)
    assert r.returncode == 0 and not above_lines(r.stderr, d, top), r.stderr
    os.chown(top, 65534, 65534)
    os.chmod(top, 0o1777)
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr
    assert above_lines(r.stderr, d, top) and "owned by uid 65534" in above_lines(
        r.stderr, d, top)[0], r.stderr


# ------------------------------------------------------------------ symlinks
def test_symlinked_plugin_to_safe_target_loads(make_gateway, keys, tmp_path):
    real = plugin_dir(tmp_path, "real")
    d = plugin_dir(tmp_path, plugins=())
    (d / "example.so").symlink_to(real / "example.so")
    g = make_gateway([gw.public_vhost(keys, tls=False)], plugin_dirs=[d])
    echo_works(g)


def test_symlinked_plugin_into_group_writable_directory_refused(binary, keys, tmp_path):
    real = plugin_dir(tmp_path, "real")
    os.chmod(real, 0o775)
    d = plugin_dir(tmp_path, plugins=())
    (d / "example.so").symlink_to(real / "example.so")
    p, _ = write_config(tmp_path, keys, [d])
    gw.refused_everywhere(p, "plugin %s: symlink to %s, whose directory is group-writable: refused"
                          % (d / "example.so", real / "example.so"))


def test_a_directory_above_a_symlinked_plugin_s_target_is_warned_of(make_gateway, keys,
                                                                    tmp_path):
    """The target's directory passes, but the one above it is group-writable: whoever can
    write there can swap the target's directory. A warning, as for a plugin directory's
    parents; the plugin still loads."""
    top = tmp_path / "g"
    top.mkdir()
    real = plugin_dir(top, "real")
    os.chmod(top, 0o775)
    d = plugin_dir(tmp_path, plugins=())
    (d / "example.so").symlink_to(real / "example.so")
    p, _ = write_config(tmp_path, keys, [d])
    line = ("plugin %s: symlink into %s: %s above it is group-writable: whoever can change it "
            "can replace the plugins" % (d / "example.so", real, top))
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if line in l]
    assert len(lines) == 1 and "warn" in lines[0], r.stderr
    assert not [l for l in r.stderr.splitlines() if "above it" in l and line not in l], r.stderr
    g = make_gateway([gw.public_vhost(keys, tls=False)], plugin_dirs=[d])
    echo_works(g)
    assert line in g.log_text(), g.log_tail()


def test_symlinked_plugin_to_writable_file_refused(binary, keys, tmp_path):
    real = plugin_dir(tmp_path, "real")
    os.chmod(real / "example.so", 0o757)
    d = plugin_dir(tmp_path, plugins=())
    (d / "example.so").symlink_to(real / "example.so")
    p, _ = write_config(tmp_path, keys, [d])
    gw.refused_everywhere(p, "plugin %s -> %s: world-writable: refused"
                          % (d / "example.so", real / "example.so"))
