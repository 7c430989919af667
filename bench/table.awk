# Turns `go test -bench` output into a Markdown table: one row per benchmark, the standard
# columns (ns/op, MB/s, B/op, allocs/op) and any custom metrics (records/s, heap-ratio, ...)
# in a last column.
/^pkg: / { pkg = $2; sub(/^github.com\/kordhq\/kord\//, "", pkg) }
/^cpu: / { sub(/^cpu: /, ""); cpu = $0 }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	ns = mb = bop = allocs = extra = ""
	for (i = 3; i < NF; i += 2) {
		v = $i; u = $(i + 1)
		if (u == "ns/op") ns = v
		else if (u == "MB/s") mb = v
		else if (u == "B/op") bop = v
		else if (u == "allocs/op") allocs = v
		else extra = extra (extra == "" ? "" : ", ") v " " u
	}
	rows[++n] = sprintf("| %s | %s | %s | %s | %s | %s | %s |", pkg, name, ns, mb, bop, allocs, extra)
}
END {
	if (cpu != "") print "CPU: " cpu "\n"
	print "| package | benchmark | ns/op | MB/s | B/op | allocs/op | other |"
	print "|---|---|---:|---:|---:|---:|---|"
	for (i = 1; i <= n; i++) print rows[i]
}
