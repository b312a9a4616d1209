"""Build backends: the build machine (host) and the local CMake + Ninja backend."""
