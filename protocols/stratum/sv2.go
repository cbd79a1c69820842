package stratum

// Stratum V2 framing (sv2-spec 03-Protocol-Overview): a 6-byte header of
// extension_type u16 LE (bit 15 = channel message), msg_type u8 and a u24
// LE payload length. Remote connections are Noise-encrypted from the first
// byte, so plaintext frames are only seen on local/unencrypted setups; for
// the encrypted case the caller uses IsSV2FirstFlight on payload lengths.

const (
	sv2Header            = 6
	sv2SetupConnection   = 0x00
	sv2SetupConnectionOK = 0x01
	sv2ProtocolMining    = 0
	// SetupConnection with every string empty is 15 bytes; with each
	// STR0_255 at its maximum it is 5*256+10. Anything outside is not it.
	sv2SetupMin = 15
	sv2SetupMax = 5*256 + 10
)

// IsSV2FirstFlight reports whether the first client and server payload
// lengths match the Noise NX handshake that opens an encrypted SV2
// connection: 64 bytes (ephemeral key + ...) client→pool, then 170 bytes
// pool→client.
func IsSV2FirstFlight(clientFirstLen, serverFirstLen int) bool {
	return clientFirstLen == 64 && serverFirstLen == 170
}

func le16(b []byte) int { return int(b[0]) | int(b[1])<<8 }

// sv2Plain recognises a plaintext SetupConnection (client) or
// SetupConnection.Success (pool) at the start of a stream. NotMining here
// means "not SV2".
func sv2Plain(b []byte) (Result, Status) {
	if len(b) >= 1 && b[0] != 0 {
		return Result{}, NotMining
	}
	if len(b) >= 2 && b[1]&0x7f != 0 {
		return Result{}, NotMining
	}
	if len(b) >= 3 && b[2] != sv2SetupConnection && b[2] != sv2SetupConnectionOK {
		return Result{}, NotMining
	}
	if len(b) < sv2Header {
		return Result{}, NeedMore
	}
	n := int(b[3]) | int(b[4])<<8 | int(b[5])<<16
	p := b[sv2Header:]
	switch b[2] {
	case sv2SetupConnectionOK:
		// used_version u16, flags u32.
		if n != 6 {
			return Result{}, NotMining
		}
		if len(p) < 2 {
			return Result{}, NeedMore
		}
		if le16(p) != 2 {
			return Result{}, NotMining
		}
		return Result{Variant: VariantV2, Side: SidePool, Method: "SetupConnection.Success"}, Match
	}
	if n < sv2SetupMin || n > sv2SetupMax {
		return Result{}, NotMining
	}
	if len(p) < 5 {
		return Result{}, NeedMore
	}
	minV, maxV := le16(p[1:]), le16(p[3:])
	if p[0] != sv2ProtocolMining || minV > 2 || maxV < 2 || maxV > 255 {
		return Result{}, NotMining
	}
	if len(p) < n {
		// The frame is small; wait for it to read the vendor string.
		return Result{}, NeedMore
	}
	r := Result{Variant: VariantV2, Side: SideClient, Method: "SetupConnection"}
	// protocol u8, min u16, max u16, flags u32, then endpoint_host
	// STR0_255, endpoint_port u16, vendor, hardware_version, firmware,
	// device_id (all STR0_255).
	off := 9
	host, off, ok := str0255(p[:n], off)
	_ = host
	if ok && off+2 <= n {
		off += 2
		var vendor, fw []byte
		vendor, off, ok = str0255(p[:n], off)
		if ok {
			_, off, ok = str0255(p[:n], off) // hardware_version
		}
		if ok {
			fw, _, ok = str0255(p[:n], off)
		}
		if len(vendor) > 0 {
			r.Agent = string(vendor)
			if ok && len(fw) > 0 {
				r.Agent += "/" + string(fw)
			}
		}
	}
	return r, Match
}

func str0255(p []byte, off int) ([]byte, int, bool) {
	if off >= len(p) {
		return nil, off, false
	}
	l := int(p[off])
	if off+1+l > len(p) {
		return nil, off, false
	}
	return p[off+1 : off+1+l], off + 1 + l, true
}
