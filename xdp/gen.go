package xdp

//go:generate go tool bpf2go -target bpfel -type mg_dest_key -type mg_flow_key -type mg_block -type mg_mode -type mg_settings bpf minerguard.c
