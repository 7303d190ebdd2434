#!/bin/bash
# HAProxy's HEALTHCHECK: its monitor URI answers 200 while at least one replica is up.
exec 3<>/dev/tcp/127.0.0.1/8404 || exit 1
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
head -n1 <&3 | grep -q ' 200 '
