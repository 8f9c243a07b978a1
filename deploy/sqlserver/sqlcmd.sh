#!/bin/sh
# sqlcmd inside the sandbox container, as sa (password from SQLCMDPASSWORD in the container's
# environment, set by compose.yaml): -b stops at the first error with a non-zero exit, -I sets
# QUOTED_IDENTIFIER ON (the DDL trigger's XML method needs it), -C trusts the container's own
# self-signed certificate. mssql-tools18 is in the 2022 images since CU14; older ones have
# mssql-tools.
for dir in /opt/mssql-tools18/bin /opt/mssql-tools/bin; do
  if [ -x "$dir/sqlcmd" ]; then
    exec "$dir/sqlcmd" -S localhost -U sa -C -b -I "$@"
  fi
done
echo "sqlcmd.sh: no sqlcmd in /opt/mssql-tools18/bin or /opt/mssql-tools/bin" >&2
exit 127
