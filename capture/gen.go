package capture

//go:generate go tool bpf2go -target bpfel -type mg_bp_key -type mg_bp_flow -type mg_bp_stats bypass bypass.c
