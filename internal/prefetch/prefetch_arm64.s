#include "textflag.h"

// func Line(p unsafe.Pointer)
TEXT ·Line(SB), NOSPLIT|NOFRAME, $0-8
	MOVD	p+0(FP), R0
	PRFM	(R0), PLDL1KEEP
	RET

// func Bytes(b []byte)
TEXT ·Bytes(SB), NOSPLIT|NOFRAME, $0-24
	MOVD	b_base+0(FP), R0
	MOVD	b_len+8(FP), R1
	CBZ	R1, done
	ADD	R0, R1, R1
	AND	$~63, R0 // from the line b starts in
loop:
	PRFM	(R0), PLDL1KEEP
	ADD	$64, R0
	CMP	R1, R0
	BLO	loop
done:
	RET
