#!/usr/bin/env bash
# Proves the packages by building, installing and running them:
#   build.sh builds the .debs and .rpms; lintian finds no error; the .debs
#   install; the installed configuration passes --check; the installed unit
#   passes systemd-analyze verify; the generated secrets are not
#   world-readable and survive a reinstall; the installed gateway, run as
#   user pavilion, answers a wss subscribe signed with the installed key; a
#   plugin built against the -dev package loads and answers; SIGTERM stops
#   the gateway; purge leaves nothing behind; the rpms list the expected files.
#
# Runs as root (it installs packages).  Each check prints "ok - NAME" or
# "not ok - NAME"; the last line is "N passed, M failed".  The machine is
# left as found (packages purged, the pavilion user removed if this run
# created it, temporary files removed) even on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
out=$top/build-pkg
PY=/usr/bin/python3
CONF=/etc/pavilion-gateway/gateway.json
PUBLIC_PORT=8443
INTERNAL_PORT=8081
WAIT=10 # seconds, for every wait below

PASSED=0
FAILED=0
ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
not_ok() { # name [diagnostic lines...]
  echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '#   %s\n' "$l"; done
  FAILED=$((FAILED + 1))
}
diag() { sed 's/^/#   /'; } # indents a command's output under a result
# check NAME CMD...: one test; the command's output is shown only on failure.
# The command runs in this shell (not a subshell), so what it sets stays set.
check() {
  local name=$1; shift
  if "$@" >"$tmp/check.txt" 2>&1; then ok "$name"
  else not_ok "$name"; tail -n 20 "$tmp/check.txt" | diag; fi
}

tmp=$(mktemp -d /tmp/pavilion-pkgtest.XXXXXX)
chmod 0755 "$tmp" # the gateway runs as pavilion and reads a config here
gw_pid=  # the wrapper (strace, runuser) started in the background
gw_real= # the gateway process itself, for cleanup
user_existed=0
getent passwd pavilion >/dev/null && user_existed=1
finished=0

purge_packages() {
  local p st
  for p in pavilion-gateway-dev pavilion-gateway; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != not-installed ] && dpkg --purge "$p"
  done
  return 0
}

# The gateway runs under runuser (and strace): runuser forwards a SIGTERM it
# gets but then exits by that signal itself (143), hiding the gateway's
# status.  So signal the gateway itself, found among gw_pid's descendants,
# and take its status from the wrapper.
gateway_pid() {
  local p=$gw_pid i
  for ((i = 0; i < 4; i++)); do
    [ -n "$p" ] || return 1
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/bin/pavilion-gateway ] && { echo "$p"; return 0; }
    p=$(pgrep -P "$p" | head -n 1)
  done
  return 1
}

stop_gateway() { # sends SIGTERM, waits; 0 when it exited 0 within $WAIT s
  local pid=$gw_pid child i rc
  [ -n "$pid" ] || return 0
  child=$(gateway_pid)
  gw_pid=
  kill -TERM "${child:-$pid}" 2>/dev/null || return 1
  for ((i = 0; i < WAIT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "still running $WAIT s after SIGTERM"
    [ -n "$child" ] && kill -KILL "$child" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 1
  fi
  wait "$pid"; rc=$?
  [ "$rc" -eq 0 ] || echo "exit status $rc after SIGTERM"
  return "$rc"
}

finish() {
  [ "$finished" = 1 ] && return
  finished=1
  {
    stop_gateway
    # a gateway that outlived its wrapper (it must not block userdel)
    [ -n "$gw_real" ] && [ "$(readlink "/proc/$gw_real/exe")" = /usr/bin/pavilion-gateway ] &&
      kill -KILL "$gw_real"
    rm -f "${plugin_so:-/nonexistent}"
    purge_packages
    if [ "$user_existed" = 0 ] && getent passwd pavilion >/dev/null; then
      userdel pavilion; getent group pavilion >/dev/null && groupdel pavilion
    fi
    rm -rf "$tmp"
  } >/dev/null 2>&1
  echo "$PASSED passed, $FAILED failed"
}
trap finish EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------- tools
need=(build-essential dpkg-dev debhelper fakeroot lintian rpm systemd
      meson ninja-build pkg-config libwebsockets-dev libssl-dev libjson-c-dev
      libjwt-dev libcmocka-dev openssl iproute2 passwd adduser python3 strace)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "# installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$tmp/apt.txt" 2>&1; then
    not_ok "install packaging tools" "$(tail -n 5 "$tmp/apt.txt")"
    exit 1
  fi
fi

# A previous run that died hard may have left the packages installed.
purge_packages >/dev/null 2>&1

# --------------------------------------------------------------- build
build_ok=1
if bash packaging/build.sh >"$tmp/build.txt" 2>&1; then :; else build_ok=0; fi
debs=("$out"/pavilion-gateway_*.deb "$out"/pavilion-gateway-dev_*.deb)
rpms=("$out"/pavilion-gateway-[0-9]*.rpm "$out"/pavilion-gateway-devel-*.rpm)
if [ -f "${debs[0]}" ] && [ -f "${debs[1]}" ]; then
  ok "dpkg-buildpackage builds pavilion-gateway and pavilion-gateway-dev"
else
  not_ok "dpkg-buildpackage builds pavilion-gateway and pavilion-gateway-dev"
  tail -n 30 "$tmp/build.txt" | diag
fi
if [ -f "${rpms[0]}" ] && [ -f "${rpms[1]}" ]; then
  ok "rpmbuild builds pavilion-gateway and pavilion-gateway-devel"
else
  not_ok "rpmbuild builds pavilion-gateway and pavilion-gateway-devel"
  tail -n 30 "$tmp/build.txt" | diag
fi
[ "$build_ok" = 1 ] || echo "# build.sh failed; logs in build-pkg/logs/"

# --------------------------------------------------------------- rpm
# The files each rpm must hold, exactly (build-id links aside).
expected_rpm_gateway="/etc/pavilion-gateway
/etc/pavilion-gateway/conf.d
/etc/pavilion-gateway/conf.d/README
/etc/pavilion-gateway/gateway.json
/usr/bin/pavilion-gateway
/usr/lib/systemd/system/pavilion-gateway.service
/usr/lib/systemd/system/pavilion-gateway@.service
/usr/lib64/pavilion-gateway
/usr/lib64/pavilion-gateway/plugins
/usr/lib64/pavilion-gateway/plugins/chat.so
/usr/lib64/pavilion-gateway/plugins/notification.so
/usr/lib64/pavilion-gateway/plugins/presence.so
/usr/lib64/pavilion-gateway/plugins/subscription.so
/usr/share/licenses/pavilion-gateway
/usr/share/licenses/pavilion-gateway/copyright
/usr/share/man/man8/pavilion-gateway.8"
expected_rpm_devel="/usr/include/pavilion
/usr/include/pavilion/plugin.h
/usr/lib64/pkgconfig/pavilion-plugin.pc"
expected_rpm_config="/etc/pavilion-gateway/conf.d/README
/etc/pavilion-gateway/gateway.json"

# build-id links vary per build; man pages are compressed on some rpm platforms
rpm_list() { rpm -qlp "$1" 2>/dev/null | grep -v '^/usr/lib/\.build-id' | sed 's/\.gz$//' | sort; }
rpm_files() { # name rpm expected
  local got
  got=$(rpm_list "$2")
  if [ "$got" = "$3" ]; then ok "$1"; else
    not_ok "$1"; diff <(echo "$3") <(echo "$got") | grep '^[<>]' | diag
  fi
}
rpm_config() { # every config file is %config(noreplace), and only those
  local got
  got=$(rpm -qp --qf '[%{FILEFLAGS:fflags}|%{FILENAMES}\n]' "$1" |
        awk -F'|' '$1 ~ /c/ { print (($1 ~ /n/) ? "" : "replace: ") $2 }' | sort)
  [ "$got" = "$expected_rpm_config" ] || { echo "config files:"; echo "$got"; return 1; }
}
rpm_scripts() {
  local tag body
  rpm -qp --qf '%{PREIN}' "$1" | grep -q 'useradd -r' || { echo "%pre: no useradd -r"; return 1; }
  rpm -qp --qf '%{POSTIN}' "$1" | grep -q 'openssl rand' || { echo "%post: no key generation"; return 1; }
  for tag in PREIN POSTIN PREUN POSTUN; do
    body=$(rpm -qp --qf "%{$tag}" "$1")
    [ "$body" = "(none)" ] || sh -n <<<"$body" || { echo "%$tag is not valid sh"; return 1; }
  done
}
if [ -f "${rpms[0]}" ]; then
  rpm_files "rpm -qlp pavilion-gateway lists the expected files" "${rpms[0]}" "$expected_rpm_gateway"
  check "rpm: configuration is %config(noreplace)" rpm_config "${rpms[0]}"
  check "rpm: %pre makes the user, %post the secrets; scriptlets are valid sh" rpm_scripts "${rpms[0]}"
else
  not_ok "rpm -qlp pavilion-gateway lists the expected files" "no rpm"
fi
if [ -f "${rpms[1]}" ]; then
  rpm_files "rpm -qlp pavilion-gateway-devel lists the expected files" "${rpms[1]}" "$expected_rpm_devel"
else
  not_ok "rpm -qlp pavilion-gateway-devel lists the expected files" "no rpm"
fi

# Without the .debs nothing below can run: count it once and stop.
if ! [ -f "${debs[0]}" ] || ! [ -f "${debs[1]}" ]; then
  not_ok "install and run the .debs" "not built"
  exit 1
fi

# --------------------------------------------------------------- lintian
lintian --fail-on error \
  "$out"/pavilion-gateway_*.changes >"$tmp/lintian.txt" 2>&1
lrc=$?
if [ "$lrc" -eq 0 ] && ! grep -q '^E:' "$tmp/lintian.txt"; then
  ok "lintian: no errors"
else
  not_ok "lintian: no errors"
fi
grep -E '^[EW]:' "$tmp/lintian.txt" | diag

# --------------------------------------------------------------- install
if { dpkg -i "${debs[@]}" || { DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq &&
       dpkg -i "${debs[@]}"; }; } >"$tmp/dpkg.txt" 2>&1 &&
   dpkg-query -W -f='${Status}\n' pavilion-gateway pavilion-gateway-dev | grep -c 'install ok installed' |
     grep -qx 2; then
  ok "dpkg -i pavilion-gateway pavilion-gateway-dev"
else
  not_ok "dpkg -i pavilion-gateway pavilion-gateway-dev"
  tail -n 20 "$tmp/dpkg.txt" | diag
  exit 1
fi

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
plugin_dir=/usr/lib/$multiarch/pavilion-gateway/plugins
installed_files() {
  local f missing=()
  for f in /usr/bin/pavilion-gateway "$plugin_dir"/{subscription,notification,chat,presence}.so \
      /etc/pavilion-gateway/gateway.json /etc/pavilion-gateway/conf.d \
      /lib/systemd/system/pavilion-gateway.service \
      /lib/systemd/system/pavilion-gateway@.service \
      /usr/share/man/man8/pavilion-gateway.8.gz \
      /usr/include/pavilion/plugin.h \
      "/usr/lib/$multiarch/pkgconfig/pavilion-plugin.pc"; do
    [ -e "$f" ] || missing+=("$f")
  done
  [ ${#missing[@]} -eq 0 ] || { echo "missing: ${missing[*]}"; return 1; }
  # conffiles, and no secret shipped in a package
  dpkg-query -W -f='${Conffiles}\n' pavilion-gateway | grep -q ' /etc/pavilion-gateway/gateway.json ' ||
    { echo "gateway.json is not a conffile"; return 1; }
  if dpkg -L pavilion-gateway pavilion-gateway-dev | grep -E 'jwt.key|api.keys|\.pem$'; then
    echo "a secret is shipped in the package"; return 1
  fi
}
check "installed files, conffiles, no shipped secrets" installed_files

system_user() {
  local uid shell
  uid=$(id -u pavilion) || return 1
  shell=$(getent passwd pavilion | cut -d: -f7)
  [ "$uid" -lt 1000 ] || { echo "uid $uid is not a system uid"; return 1; }
  case $shell in */nologin|*/false) ;; *) echo "login shell $shell"; return 1 ;; esac
}
check "postinst made the system user pavilion" system_user

secrets=(/etc/pavilion-gateway/jwt.key /etc/pavilion-gateway/api.keys
         /etc/pavilion-gateway/tls/key.pem)
secret_modes() {
  local f m o rc=0
  for f in "${secrets[@]}" /etc/pavilion-gateway/tls/cert.pem; do
    [ -s "$f" ] || { echo "$f: missing or empty"; rc=1; continue; }
  done
  for f in "${secrets[@]}"; do
    [ -e "$f" ] || continue
    m=$(stat -c %a "$f"); o=$(stat -c %U:%G "$f")
    if (( (8#$m & 8#007) != 0 )); then echo "$f: mode $m is world-accessible"; rc=1; fi
    case "$m $o" in
      "640 root:pavilion"|"600 pavilion:"*|"400 pavilion:"*) ;;
      *) echo "$f: $m $o (want 0640 root:pavilion or 0600 pavilion)"; rc=1 ;;
    esac
  done
  return $rc
}
check "generated secrets exist and are not world-readable" secret_modes

check "pavilion-gateway --check on the installed configuration" \
  /usr/bin/pavilion-gateway --check -c "$CONF"

installed_config() {
  PAV_PLUGIN_DIR=$plugin_dir $PY - "$CONF" <<'EOF'
import json, os, sys
c = json.load(open(sys.argv[1]))
v = {x["name"]: x for x in c["vhosts"]}
want = [
    (c["include"], "conf.d"),
    (c["plugin_dirs"], [os.environ["PAV_PLUGIN_DIR"]]),
    (c["log"]["format"], "json"),
    (v["public"]["listen"], "127.0.0.1:8443"),
    (v["public"]["tls"], {"cert": "/etc/pavilion-gateway/tls/cert.pem",
                          "key": "/etc/pavilion-gateway/tls/key.pem"}),
    (v["public"]["auth"]["algorithms"], ["HS256"]),
    (v["public"]["auth"]["key_file"], "/etc/pavilion-gateway/jwt.key"),
    (sorted(v["public"]["plugins"]), ["chat", "notification", "presence", "subscription"]),
    (v["internal"]["listen"], "127.0.0.1:8081"),
    (v["internal"]["api"]["keys_file"], "/etc/pavilion-gateway/api.keys"),
]
bad = [(got, exp) for got, exp in want if got != exp]
for got, exp in bad:
    print("got %r, want %r" % (got, exp))
sys.exit(1 if bad else 0)
EOF
}
check "installed gateway.json: vhosts, keys, plugins, plugin_dirs, log json" installed_config

check "systemd-analyze verify pavilion-gateway.service" \
  systemd-analyze verify /lib/systemd/system/pavilion-gateway.service
check "systemd-analyze verify pavilion-gateway@2.service (the per-process template)" \
  systemd-analyze verify pavilion-gateway@2.service

sums() { sha256sum "${secrets[@]}" /etc/pavilion-gateway/tls/cert.pem; }
reinstall_keeps() {
  local before after
  before=$(sums) || return 1
  dpkg -i "${debs[0]}" >/dev/null || return 1
  after=$(sums)
  [ "$before" = "$after" ] || { echo "secrets changed on reinstall"; return 1; }
}
check "reinstall keeps the existing secrets" reinstall_keeps

# --------------------------------------------------------------- run
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_gateway CONFIG LOG: the installed binary as user pavilion, under
# strace (LOG.strace) to compare its system calls with the unit's filter.
# Sets gw_pid; 0 when both ports listen.
start_gateway() {
  local cfg=$1 log=$2 i p
  for p in $PUBLIC_PORT $INTERNAL_PORT; do
    if port_busy "$p"; then
      echo "port $p is already in use on this machine (another gateway, or scripts/dev-run.sh?):"
      ss -Hltnp "sport = :$p"
      return 1
    fi
  done
  strace -f -qq -o "$log.strace" -- \
    runuser -u pavilion -- /usr/bin/pavilion-gateway -c "$cfg" >"$log" 2>&1 &
  gw_pid=$!
  for ((i = 0; i < WAIT * 10; i++)); do
    if ! kill -0 "$gw_pid" 2>/dev/null; then
      echo "the gateway exited:"; tail -n 20 "$log"; gw_pid=; return 1
    fi
    if port_busy $PUBLIC_PORT && port_busy $INTERNAL_PORT; then
      gw_real=$(gateway_pid); return 0
    fi
    sleep 0.1
  done
  echo "not listening on $PUBLIC_PORT and $INTERNAL_PORT after $WAIT s:"; tail -n 20 "$log"
  return 1
}

# ws_exchange MESSAGE-JSON EXPECT-PYTHON-EXPR: connects over wss with a token
# minted from the installed key, verifying the installed certificate, sends
# MESSAGE and waits for a message m for which EXPR is true.
ws_exchange() {
  local token
  token=$(/usr/bin/pavilion-gateway token -c "$CONF" --sub alice) || return 1
  PYTHONDONTWRITEBYTECODE=1 PAV_TOKEN=$token PAV_PORT=$PUBLIC_PORT \
  timeout 15 $PY - "$1" "$2" <<'EOF'
import json, os, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "test", "integration"))
from wsclient import WS
msg, expect = json.loads(sys.argv[1]), sys.argv[2]
ws = WS.connect("127.0.0.1", int(os.environ["PAV_PORT"]), "/ws?token=" + os.environ["PAV_TOKEN"],
                tls=True, server_hostname="localhost",
                cafile="/etc/pavilion-gateway/tls/cert.pem", timeout=5.0)
ws.send_json(msg)
deadline = time.time() + 10
seen = []
while time.time() < deadline:
    m = ws.recv_json(timeout=max(0.1, deadline - time.time()))
    seen.append(m)
    if eval(expect, {"m": m}):
        print("got", json.dumps(m))
        ws.close()
        sys.exit(0)
print("no matching message; got:", json.dumps(seen))
sys.exit(1)
EOF
}

run_installed() {
  start_gateway "$CONF" "$tmp/gateway.log" || return 1
  ws_exchange '{"type":"subscribe","id":"1","payload":{"channel":"user"}}' \
    'm.get("type") == "ack" and m.get("id") == "1"' ||
    { echo "gateway log:"; tail -n 20 "$tmp/gateway.log"; return 1; }
}
check "installed gateway as user pavilion: wss subscribe is acked" run_installed

default_loop() { # libev by default; lws loads its libev glue, a dependency
  local dep
  grep -q 'ready (libev event loop' "$tmp/gateway.log" ||
    { echo "gateway log:"; tail -n 5 "$tmp/gateway.log"; return 1; }
  dep=$(dpkg-deb -f "${debs[0]}" Depends)
  [[ $dep == *libwebsockets-evlib-ev* ]] || { echo "Depends: $dep"; return 1; }
}
if [ -n "$gw_pid" ]; then
  check "installed gateway runs the libev loop; the .deb depends on its lws plugin" default_loop
fi

loopback_only() { # the installed config listens on 127.0.0.1 only
  local got
  got=$(ss -Hltn "( sport = :$PUBLIC_PORT or sport = :$INTERNAL_PORT )" | awk '{print $4}' | sort -u)
  [ "$got" = "$(printf '127.0.0.1:%s\n127.0.0.1:%s' $INTERNAL_PORT $PUBLIC_PORT)" ] ||
    { echo "listening on:"; echo "$got"; return 1; }
}
if [ -n "$gw_pid" ]; then
  check "installed gateway listens on 127.0.0.1 only, as configured" loopback_only
fi

sighup_reload() { # ExecReload: SIGHUP keeps the gateway running
  local pid
  pid=$(gateway_pid) || { echo "the gateway is not running"; return 1; }
  kill -HUP "$pid" && sleep 1 && kill -0 "$pid" ||
    { echo "gone after SIGHUP:"; tail -n 20 "$tmp/gateway.log"; return 1; }
  ws_exchange '{"type":"subscribe","id":"2","payload":{"channel":"user"}}' \
    'm.get("type") == "ack" and m.get("id") == "2"'
}
if [ -n "$gw_pid" ]; then
  check "SIGHUP (ExecReload): the gateway reloads and keeps serving" sighup_reload
fi

if [ -n "$gw_pid" ]; then
  check "SIGTERM: the gateway exits 0 within $WAIT s" stop_gateway
else
  not_ok "SIGTERM: the gateway exits 0 within $WAIT s" "the gateway is not running"
fi

# The system calls the gateway made (start, TLS handshake, subscribe, reload,
# shutdown) must pass the unit's SystemCallFilter, and its memory mappings
# MemoryDenyWriteExecute: a service that dies by SIGSYS only under systemd
# would pass every other test here.
sandbox_fits() {
  [ -s "$tmp/gateway.log.strace" ] || { echo "no strace output"; return 1; }
  $PY - /lib/systemd/system/pavilion-gateway.service "$tmp/gateway.log.strace" <<'EOF'
import re, subprocess, sys
unit, trace = sys.argv[1], sys.argv[2]
groups, cur = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                           text=True).stdout.splitlines():
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), set())
    elif cur is not None and line.startswith("    ") and not line.strip().startswith("#"):
        cur.add(line.strip())
def expand(names, seen=()):
    out = set()
    for n in names:
        out |= expand(groups[n], seen + (n,)) if n.startswith("@") and n not in seen else {n}
    return out
allow, deny = None, set()
for line in open(unit):
    m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
    if m:
        names = expand(m.group(2).split())
        if m.group(1):
            deny |= names
        else:
            allow = names if allow is None else allow | names
pids_after_exec, bad = set(), []
calls = set()
for line in open(trace):
    m = re.match(r"(\d+) +([a-z0-9_]+)\((.*)", line)
    r = re.match(r"(\d+) +<\.\.\. (clone3?|v?fork) resumed>.*= (\d+)$", line.strip())
    if r and r.group(1) in pids_after_exec:
        pids_after_exec.add(r.group(3))
    if not m:
        continue
    pid, call, args = m.groups()
    # runuser itself runs outside the filter: count from the gateway's execve
    if call == "execve" and args.startswith('"/usr/bin/pavilion-gateway"'):
        pids_after_exec.add(pid)
    if pid not in pids_after_exec:
        continue
    calls.add(call)
    # threads the gateway starts run under the same filter
    r = re.search(r"= (\d+)$", line.strip())
    if call in ("clone", "clone3", "fork", "vfork") and r:
        pids_after_exec.add(r.group(1))
    if call in ("mmap", "mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
        if "PROT_WRITE" in args or call != "mmap":
            bad.append("MemoryDenyWriteExecute: " + line.strip())
for c in sorted(calls):
    if (allow is not None and c not in allow) or c in deny:
        bad.append("SystemCallFilter: %s" % c)
print("system calls:", " ".join(sorted(calls)))
for b in bad:
    print(b)
sys.exit(1 if bad or not calls else 0)
EOF
}
check "the running gateway fits the unit's SystemCallFilter and MemoryDenyWriteExecute" sandbox_fits

plugin_so=
build_plugin() {
  local dir
  dir=$(pkg-config --variable=plugindir pavilion-plugin) || return 1
  [ "$dir" = "$plugin_dir" ] || { echo "plugindir $dir, want $plugin_dir"; return 1; }
  plugin_so=$dir/example.so
  # shellcheck disable=SC2046
  cc -shared -fPIC -Wall -Wextra -Werror plugins/example/example.c \
    $(pkg-config --cflags --libs pavilion-plugin) -o "$plugin_so"
}
check "a plugin builds against pavilion-gateway-dev (pkg-config pavilion-plugin)" build_plugin

run_example() {
  [ -f "$plugin_so" ] || { echo "no example.so"; return 1; }
  # The installed config with "example" enabled on the public vhost; the
  # copy names the installed conf.d since it lives elsewhere.
  $PY - "$CONF" "$tmp/example.json" <<'EOF' || return 1
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["include"] = "/etc/pavilion-gateway/conf.d"
pub = [v for v in cfg["vhosts"] if v["name"] == "public"][0]
pub["plugins"]["example"] = {"greeting": "hello from the package test"}
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
EOF
  chmod 0644 "$tmp/example.json"
  /usr/bin/pavilion-gateway --check -c "$tmp/example.json" || return 1
  start_gateway "$tmp/example.json" "$tmp/example.log" || return 1
  ws_exchange '{"type":"echo","payload":{"x":1}}' \
    'm.get("type") == "echo" and m.get("payload") == {"greeting": "hello from the package test", "echo": {"x": 1}}' ||
    { echo "gateway log:"; tail -n 20 "$tmp/example.log"; stop_gateway; return 1; }
  stop_gateway
}
check "the dropped-in plugin loads and answers echo" run_example

# --------------------------------------------------------------- purge
purge_clean() {
  local left
  rm -f "$plugin_so" # the operator's file, not the package's
  dpkg --purge pavilion-gateway-dev pavilion-gateway >"$tmp/purge.txt" 2>&1 ||
    { tail -n 20 "$tmp/purge.txt"; return 1; }
  left=$(ls -d /etc/pavilion-gateway /usr/lib/*/pavilion-gateway /usr/bin/pavilion-gateway \
           /lib/systemd/system/pavilion-gateway.service /usr/include/pavilion \
           /etc/systemd/system/*/pavilion-gateway.service 2>/dev/null)
  [ -z "$left" ] || { echo "left after purge:"; echo "$left"; find $left | head -n 20; return 1; }
  # Policy choice: the system user is kept (files it owned may remain).
  getent passwd pavilion >/dev/null || { echo "the pavilion user was removed"; return 1; }
}
check "dpkg --purge leaves nothing (system user kept, by policy)" purge_clean

exit 0
