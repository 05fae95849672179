# Shared shell helpers for scripts/ and bench/. Source it: `. "$repo/scripts/lib.sh"`.

# Runs a command as root: directly when already root, else through sudo; fails clearly without either.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}
