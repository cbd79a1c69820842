package capture

import "github.com/gopacket/gopacket"

// gopacketCI keeps gopacket's type name out of the rest of the package.
type gopacketCI = gopacket.CaptureInfo
