package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/minerguard/minerguard/detect"
	"github.com/minerguard/minerguard/internal/structured"
	"github.com/minerguard/minerguard/sensor"
	"github.com/spf13/cobra"
)

// signature is one row of `minerguard signatures`.
type signature struct {
	ID       int    `json:"signature_id" yaml:"signature_id"`
	Detector string `json:"detector" yaml:"detector"`
	Severity int    `json:"severity" yaml:"severity"`
	Blocking bool   `json:"drops_in_enforce_mode" yaml:"drops_in_enforce_mode"`
	// OptIn: flagged by default, dropped in enforce mode when listed in enforcement.drop_signatures.
	OptIn   bool   `json:"drops_when_opted_in" yaml:"drops_when_opted_in"`
	Name    string `json:"signature" yaml:"signature"`
	Meaning string `json:"meaning" yaml:"meaning"`
}

// meanings says what each signature means, for people tuning them.
var meanings = map[int]string{
	detect.ReasonStratum.SignatureID():      "a mining protocol message, either side, any port: Stratum v1, CryptoNote/XMRig, EthereumStratum, eth-proxy, getwork/getblocktemplate, Stratum V2 SetupConnection, web miners; also inside SOCKS, HTTP CONNECT and WebSocket tunnels",
	detect.ReasonPoolDNS.SignatureID():      "a DNS query (UDP or TCP) for a listed mining pool domain (suffix match)",
	detect.ReasonPoolSNI.SignatureID():      "a TLS ClientHello whose server name is a listed pool",
	detect.ReasonPoolIP.SignatureID():       "a flow to a listed pool address, to an address a DNS answer tied to a pool name, or through a proxy to a pool name",
	detect.ReasonDoH.SignatureID():          "a record, not an alert (EVE anomaly ENCRYPTED_DNS): DNS over TLS, or over HTTPS to a listed resolver; learned by profiles, counted per workload, a behaviour signal",
	detect.ReasonSV2Handshake.SignatureID(): "the Stratum V2 Noise first flight: 64 bytes out, 170 back",
	detect.ReasonTLSBare.SignatureID():      "a ClientHello with neither server name nor ALPN, as XMRig sends by default (low severity; dropped only when opted in: enforcement.drop_signatures)",
	detect.ReasonNotInProfile.SignatureID(): "a destination outside the workload's learned egress profile",
	detect.ReasonUnresolvedIP.SignatureID(): "out of profile, to an address no DNS answer in the workload's namespace and no server name named",
	detect.ReasonBehaviour.SignatureID():    "a TLS session shaped like a mining pool session (record sizes and timing, scored by a fitted model 40 s in); features in the alert (low severity; dropped only when opted in: enforcement.drop_signatures)",
	sensor.SIDMapFull:                       "not a detection: a block did not fit the XDP map, so the workload's enforcement fell back to flag-only",
}

func signatures() []signature {
	var out []signature
	for r := detect.ReasonStratum; r.String() != "unknown"; r++ {
		if r.SignatureID() == sensor.SIDMapFull {
			continue // the sensor's own row below
		}
		out = append(out, signature{r.SignatureID(), r.String(), r.Severity(), r.Blocking(), r.OptInDrop(), r.Signature(), meanings[r.SignatureID()]})
	}
	return append(out, signature{sensor.SIDMapFull, "xdp", 1, false, false,
		"MINERGUARD enforcement degraded: XDP block map full, workload switched to flag-only", meanings[sensor.SIDMapFull]})
}

func signaturesCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "signatures",
		Short: "List every alert signature_id with its detector, severity and meaning (for threshold files)",
		Long: "Lists the signature_id of every alert minerguard raises (gen_id 1), with the detector that\n" +
			"raises it, its severity, whether enforce mode drops on it (opt-in: only when listed in the\n" +
			"sensor's enforcement.drop_signatures), and what it means. Use the ids in a\n" +
			"threshold file (replay --threshold-file, the sensor's alerts.threshold_file), in Suricata's\n" +
			"threshold.config syntax:\n\n" +
			"  suppress gen_id 1, sig_id 9400009, track by_workload, workload k8s/monitoring/*\n" +
			"  suppress gen_id 1, sig_id 9400004, track by_dst, ip 198.51.100.0/24\n" +
			"  threshold gen_id 1, sig_id 9400008, type limit, track by_workload, count 1, seconds 3600",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows := signatures()
			w := cmd.OutOrStdout()
			switch output {
			case "text":
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SID\tDETECTOR\tSEVERITY\tDROPS\tMEANING")
				for _, r := range rows {
					drops := "no"
					if r.Blocking {
						drops = "yes"
					} else if r.OptIn {
						drops = "opt-in"
					}
					fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", r.ID, r.Detector, r.Severity, drops, r.Meaning)
				}
				return tw.Flush()
			case "json", "yaml":
				return structured.Write(w, output, rows)
			}
			return &exitErr{exitError, fmt.Errorf("-o %q: want text, json or yaml", output)}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	return cmd
}
