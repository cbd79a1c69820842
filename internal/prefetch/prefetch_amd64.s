#include "textflag.h"

// func Line(p unsafe.Pointer)
TEXT ·Line(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ	p+0(FP), AX
	PREFETCHT0	(AX)
	RET

// func Bytes(b []byte)
TEXT ·Bytes(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ	b_base+0(FP), AX
	MOVQ	b_len+8(FP), CX
	TESTQ	CX, CX
	JLE	done
	ADDQ	AX, CX
	ANDQ	$~63, AX // from the line b starts in
loop:
	PREFETCHT0	(AX)
	ADDQ	$64, AX
	CMPQ	AX, CX
	JB	loop
done:
	RET
