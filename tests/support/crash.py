"""A process killed before its N-th change to a directory tree: code to put at the top of a
script run in a subprocess. It installs an audit hook (PEP 578, no test hook in secinstall
itself) that counts each file-system change inside `CRASH_ROOT` (open for writing, rename,
remove, mkdir, rmdir, chmod, ...) and SIGKILLs the process just before the `CRASH_AT`-th
(0: never). With `CRASH_LOG` set, every change counted is listed there, one per line."""

KILL_BEFORE_CHANGE = r'''
import os, signal, sys

ROOT = os.path.realpath(os.environ["CRASH_ROOT"])
CRASH_AT = int(os.environ["CRASH_AT"])
LOG = os.environ.get("CRASH_LOG")
# event: ((index of a path argument, index of its dir_fd argument or None), ...)
CHANGES = {"os.rename": ((0, 2), (1, 3)), "os.remove": ((0, 1),), "os.rmdir": ((0, 1),),
           "os.mkdir": ((0, 2),), "os.chmod": ((0, 2),), "os.truncate": ((0, None),),
           "os.symlink": ((1, 2),), "os.link": ((1, 3),), "os.utime": ((0, 3),),
           "shutil.rmtree": ((0, 1),), "shutil.move": ((0, None), (1, None)),
           "shutil.copyfile": ((1, None),)}
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
count = 0


def absolute(path, dir_fd):
    if isinstance(path, int):
        return None
    path = os.fsdecode(path)
    if not os.path.isabs(path):
        base = os.getcwd() if dir_fd is None else os.readlink(f"/proc/self/fd/{dir_fd}")
        path = os.path.join(base, path)
    return os.path.realpath(os.path.join(os.path.dirname(path) or "/", "")) + "/" + \
        os.path.basename(path)


def hook(event, args):
    global count
    if event == "open":
        path, mode, flags = args
        if mode is None and not (flags & WRITING):
            return
        if mode is not None and not any(c in mode for c in "wax+"):
            return
        paths = [absolute(path, None)]
    elif event in CHANGES:
        paths = [absolute(args[i], None if fd is None or fd >= len(args) else args[fd])
                 for i, fd in CHANGES[event]]
    else:
        return
    if not any(p is not None and (p + "/").startswith(ROOT + "/") for p in paths):
        return
    count += 1
    if LOG:
        with open(LOG, "a", encoding="utf-8") as log:  # outside ROOT: not counted
            log.write(f"{count} {event} {paths}\n")
    if count == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)


sys.addaudithook(hook)
'''
