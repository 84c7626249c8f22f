# herd-guest-writer: the test guest that writes to a disk.
#
# It writes numbered, checksummed 4 KiB blocks to a data disk, one per timer
# tick (18.2 a second), and reports on COM1 each block whose write and the
# cache flush after it the disk completed:
#
#     herd-guest boot
#     herd-guest id 2882400018 ring 4096
#     herd-guest resume 0
#     herd-guest ack 1
#     herd-guest ack 2
#     ...
#
# Block k goes to slot k mod N of the data disk (slot s: sectors 8s..8s+7),
# N = the disk's size in 4 KiB blocks, at most RING_MAX = 4096 (so at most
# the first 16 MiB are written, and the ring wraps).  A block (little-endian):
#
#     0   "HERDBLK1"
#     8   k (64 bits)
#     16  the boot id (32 bits, printed in the `id` line)
#     20  N
#     24  checksum a: the sum of the 1024 32-bit words, mod 2^32
#     28  checksum b: the sum of the running sums a_0..a_1023, mod 2^32
#         (a and b computed with both fields 0)
#     32  words 8..1023: word i = (k << 10 | i) xor the boot id
#
# The block being written is always the one after the last acknowledged
# one: at most one write is in flight.  At boot, the guest reads all N slots
# and continues after the highest valid block (magic and checksum right) it
# finds ("resume K", 0 on an empty disk), so a VM restarted after a crash or
# a failover goes on numbering; a torn block (a write cut short) fails its
# checksum and is written again.  All state is in RAM and the pace comes
# from timer ticks, so a live migration does not interrupt the numbering.
#
# The driver is ATA on the primary IDE channel (ports 0x1f0-0x1f7, 0x3f6),
# master: QEMU's i440fx/PIIX3 IDE, what libvirt gives a disk with
# <target dev='hda' bus='ide'/> on machine 'pc'.  A block is written with
# PIO, WRITE MULTIPLE with a multiple count of 8, so that QEMU makes it one
# 4 KiB write (plain WRITE SECTORS would make it eight 512-byte writes),
# then FLUSH CACHE.  The scan at boot reads 64 KiB at a time with
# bus-master DMA (READ DMA; the PIIX3's bus-master registers from its PCI
# BAR4): QEMU takes about 0.1 ms a request, so 4096 single-block reads
# would take half a second, 256 DMA reads take some 50 ms.  While the disk
# is busy the CPU sits in HLT, woken by the disk's IRQ14 (or the timer).
# On an error (the disk reports ERR or DF) it prints "herd-guest error ..."
# and retries the same block at the next tick; it never acknowledges a block
# whose write or flush failed.
#
# Layout: sector 0 (SeaBIOS loads it at 0x7c00) initialises COM1, prints
# "herd-guest boot" and loads the rest of the image (LOAD_SECTORS sectors
# from the boot disk, INT 13h extended read) to 0x7e00; the block buffer is
# at BUF, the scan's DMA buffer at 0x10000.  The boot disk is read-only
# (virtio-blk, as for herd-guest.img).
#
# Built by tests/guest/meson.build into herd-guest-writer.img (1 MiB).

	.code16

	.include "guest-io.inc"

	.set IVT_IRQ14,		0x76 * 4	# SeaBIOS maps IRQ8-15 to 0x70-0x77
	.set ATA_DATA,		0x1f0
	.set ATA_ERROR,		0x1f1
	.set ATA_COUNT,		0x1f2
	.set ATA_LBA0,		0x1f3		# then 0x1f4, 0x1f5: LBA bits 8-23
	.set ATA_DEVICE,	0x1f6
	.set ATA_CMD,		0x1f7		# read: the status (clears the IRQ)
	.set ATA_ALTSTATUS,	0x3f6		# write: device control
	.set ST_BSY,		0x80
	.set ST_DF,		0x20
	.set ST_DRQ,		0x08
	.set ST_ERR,		0x01
	.set CMD_IDENTIFY,	0xec
	.set CMD_SETMULT,	0xc6
	.set CMD_WRITEMULT,	0xc5
	.set CMD_FLUSH,		0xe7
	.set CMD_READDMA,	0xc8
	.set PCI_ADDR,		0xcf8
	.set PCI_DATA,		0xcfc
	.set PIIX_IDE,		0x80000900	# PCI config of 00:01.1, PIIX3's IDE
	.set BM_STATUS,		2		# bus-master registers: command at 0
	.set BM_PRD,		4
	.set BM_INT_ERR,	0x06		# status: interrupt, error
	.set SCAN_BLOCKS,	16		# blocks a scan's DMA read: 64 KiB
	.set SCAN_SEG,		0x1000		# its buffer: 0x10000-0x1ffff
	.set BLOCK_SECTORS,	8		# a block is 4 KiB
	.set BLOCK_DWORDS,	1024
	.set RING_MAX,		4096		# blocks: 16 MiB
	.set MAGIC0,		0x44524548	# "HERD"
	.set MAGIC1,		0x314b4c42	# "BLK1"
	.set LOAD_SECTORS,	8		# the image after sector 0 (4 KiB)
	.set BUF,		0xa000		# one block

	.text
	boot_entry
	movb	%dl, boot_drive		# the drive SeaBIOS booted
	com1_init
	movw	$msg_boot, %si
	call	puts

	# The rest of the image, from the boot drive.
	sti
	movb	boot_drive, %dl
	movw	$dap, %si
	movb	$0x42, %ah
	int	$0x13
	jc	1f
	cli
	jmp	stage2
1:	movw	$msg_load_err, %si
	call	puts
2:	hlt				# for ever
	jmp	2b

	io_routines

	.balign	4
dap:	.byte	16, 0			# disk address packet: size, reserved
	.word	LOAD_SECTORS
	.word	0x7e00, 0		# buffer offset, segment
	.quad	1			# first sector

msg_boot:	.asciz	"herd-guest boot\r\n"
msg_load_err:	.asciz	"herd-guest error cannot load the image\r\n"
boot_drive:	.byte	0

	.org	510
	.word	0xaa55			# boot signature

# ---- loaded by the boot sector at 0x7e00
stage2:
	timer_init
	movw	$irq14, IVT_IRQ14
	movw	$0, IVT_IRQ14+2
	outb_imm PIC1_DATA, 0xfa	# IRQ0 and IRQ2 (the cascade) only
	outb_imm PIC2_DATA, 0xbf	# IRQ14 only
	outb_imm ATA_ALTSTATUS, 0x00	# device control: nIEN=0, IRQ14 on
	sti

	# The boot id: the TSC (running on the host's clock under TCG, so its
	# low bits differ at every boot) mixed with the RTC's day and time.
	rdtsc
	xorl	%edx, %eax
	movl	%eax, %ebx
	xorl	%ecx, %ecx
	movw	$rtc_regs, %si
1:	lodsb
	testb	%al, %al
	js	2f			# 0xff ends the list
	outb	%al, $0x70
	inb	$0x71, %al
	shll	$8, %ecx
	movb	%al, %cl
	jmp	1b
2:	xorl	%ecx, %ebx
	movl	%ebx, boot_id

	# The data disk: primary IDE master, its size from IDENTIFY (words
	# 60-61: sectors addressable with LBA28).
	outb_imm ATA_DEVICE, 0xe0	# master, LBA
	outb_imm ATA_CMD, CMD_IDENTIFY
	call	ata_wait		# no disk: status 0, no DRQ
	testb	$(ST_ERR | ST_DF), %al
	jnz	no_disk
	testb	$ST_DRQ, %al
	jz	no_disk
	movw	$BUF, %di
	movw	$128, %cx
	movw	$ATA_DATA, %dx
	rep insl
	movl	BUF+120, %eax
	shrl	$3, %eax		# sectors -> blocks
	cmpl	$RING_MAX, %eax
	jbe	1f
	movl	$RING_MAX, %eax
1:	cmpl	$2, %eax
	jb	too_small
	movl	%eax, ring
	outb_imm ATA_COUNT, BLOCK_SECTORS
	outb_imm ATA_CMD, CMD_SETMULT	# a DRQ block of 8 sectors
	call	ata_wait
	testb	$(ST_ERR | ST_DF), %al
	jnz	no_disk

	# Bus-master DMA for the scan: BAR4 of the IDE function, an I/O BAR
	# (SeaBIOS assigned it); bus mastering on.
	movl	$PIIX_IDE + 0x20, %eax
	movw	$PCI_ADDR, %dx
	outl	%eax, %dx
	movw	$PCI_DATA, %dx
	inl	%dx, %eax
	testb	$1, %al
	jz	no_dma
	andw	$0xfffc, %ax
	jz	no_dma
	movw	%ax, bmiba
	movl	$PIIX_IDE + 0x04, %eax
	movw	$PCI_ADDR, %dx
	outl	%eax, %dx
	movw	$PCI_DATA, %dx
	inw	%dx, %ax
	orw	$0x05, %ax		# command: I/O space, bus master
	outw	%ax, %dx

	movw	$msg_id, %si
	call	puts
	movl	boot_id, %eax
	call	put_decimal
	movw	$msg_ring, %si
	call	puts
	movl	ring, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts

	# Resume after the highest valid block on the disk: read it 16 blocks
	# at a time, each copied to BUF and checked there.
scan:
	movl	slot, %eax
	movl	ring, %ecx
	subl	%eax, %ecx
	jbe	scan_done
	cmpl	$SCAN_BLOCKS, %ecx
	jbe	1f
	movl	$SCAN_BLOCKS, %ecx
1:	movw	%cx, scan_count
	call	read_dma
	jc	read_error
	movw	$0, scan_index
2:	movw	scan_index, %si
	shlw	$12, %si		# its offset in the buffer
	pushw	%ds
	movw	$SCAN_SEG, %ax
	movw	%ax, %ds
	movw	$BUF, %di
	movw	$BLOCK_DWORDS, %cx
	rep movsl			# DS:SI -> ES:DI (ES is 0)
	popw	%ds
	call	valid_block
	jc	3f
	cmpl	seq, %eax
	jbe	3f
	movl	%eax, seq
3:	incw	scan_index
	movw	scan_index, %ax
	cmpw	scan_count, %ax
	jb	2b
	movzwl	scan_count, %eax
	addl	%eax, slot
	jmp	scan
read_error:
	movw	$msg_read_err, %si
	movl	slot, %eax
	call	report_error
	call	next_tick
	jmp	scan
scan_done:
	movw	$msg_resume, %si
	call	puts
	movl	seq, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts

	# Write block seq+1, flush, acknowledge; at most one a tick.
write_loop:
	movl	ticks, %eax
	movl	%eax, started
	call	build_block
	movl	seq, %eax
	incl	%eax
	xorl	%edx, %edx
	divl	ring			# edx = slot
	movl	%edx, %eax
	call	write_block
	jc	write_error
	incl	seq
	movw	$msg_ack, %si
	call	puts
	movl	seq, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts
	call	next_tick
	jmp	write_loop
write_error:
	movw	$msg_write_err, %si
	movl	seq, %eax
	incl	%eax
	call	report_error
	call	next_tick
	jmp	write_loop

no_disk:
	movw	$msg_no_disk, %si
	jmp	1f
no_dma:
	movw	$msg_no_dma, %si
	jmp	1f
too_small:
	movw	$msg_too_small, %si
1:	call	puts
halt:
	sti
	hlt				# for ever (the timer still ticks)
	jmp	halt

# next_tick: wait until `ticks` differs from `started`.  Clobbers eax.
next_tick:
	cli
	movl	ticks, %eax
	cmpl	started, %eax
	jne	1f
	sti
	hlt				# STI's shadow: no tick is lost before HLT
	jmp	next_tick
1:	sti
	ret

# report_error: print the string at %si, %eax, the status (`status`) and
# the error register, and a line end.  Clobbers eax, ebx, edx, si, di.
report_error:
	pushl	%eax
	call	puts
	popl	%eax
	call	put_decimal
	movw	$msg_status, %si
	call	puts
	movzbl	status, %eax
	call	put_decimal
	movw	$msg_error_reg, %si
	call	puts
	movw	$ATA_ERROR, %dx
	inb	%dx, %al
	movzbl	%al, %eax
	call	put_decimal
	movw	$msg_crlf, %si
	call	puts
	movl	ticks, %eax		# retry at the next tick
	movl	%eax, started
	ret

# ata_wait: wait until the disk is not busy; AL = its status.  Sleeps in HLT
# meanwhile (IRQ14 or the timer wakes it).  Clobbers dx.
ata_wait:
	cli
	movw	$ATA_ALTSTATUS, %dx	# does not acknowledge the IRQ
	inb	%dx, %al
	testb	$ST_BSY, %al
	jz	1f
	sti
	hlt
	jmp	ata_wait
1:	sti
	movb	%al, status
	ret

# ata_block_cmd: issue command BL for BH sectors from slot %eax on.
# Clobbers eax, ecx, dx.
ata_block_cmd:
	shll	$3, %eax		# LBA = slot * 8
	movl	%eax, %ecx
	shrl	$24, %eax
	andb	$0x0f, %al
	orb	$0xe0, %al		# master, LBA, LBA bits 24-27
	movw	$ATA_DEVICE, %dx
	outb	%al, %dx
	movb	%bh, %al
	movw	$ATA_COUNT, %dx
	outb	%al, %dx
	movb	%cl, %al
	movw	$ATA_LBA0, %dx
	outb	%al, %dx
	movb	%ch, %al
	incw	%dx
	outb	%al, %dx
	shrl	$16, %ecx
	movb	%cl, %al
	incw	%dx
	outb	%al, %dx
	movb	%bl, %al
	movw	$ATA_CMD, %dx
	outb	%al, %dx
	ret

# read_dma: read CX blocks (1-16) from slot %eax on to SCAN_SEG:0 with
# bus-master DMA (one request to the disk: PIO would be one a block, and
# QEMU takes some 0.1 ms a request); CF set on an error.  Clobbers eax, bx,
# ecx, dx.
read_dma:
	movw	%cx, %bx
	shlw	$12, %bx		# bytes (16 blocks: 0, which means 64 KiB)
	movw	%bx, prd+4
	movb	%cl, %bh
	shlb	$3, %bh			# sectors, for ata_block_cmd
	pushl	%eax
	movw	bmiba, %dx
	xorb	%al, %al
	outb	%al, %dx		# bus-master command: stopped
	addw	$BM_PRD, %dx
	movl	$prd, %eax
	outl	%eax, %dx		# the PRD table
	subw	$BM_PRD - BM_STATUS, %dx
	movb	$BM_INT_ERR, %al
	outb	%al, %dx		# clear the interrupt and error bits
	popl	%eax
	movb	$CMD_READDMA, %bl
	call	ata_block_cmd
	movw	bmiba, %dx
	movb	$0x09, %al		# start, towards memory
	outb	%al, %dx
1:	cli
	movw	bmiba, %dx
	addw	$BM_STATUS, %dx
	inb	%dx, %al
	testb	$BM_INT_ERR, %al	# done (IRQ14 raised), or failed
	jnz	2f
	sti
	hlt
	jmp	1b
2:	sti
	movb	%al, %bl
	movw	bmiba, %dx
	xorb	%al, %al
	outb	%al, %dx		# stop
	call	ata_wait
	testb	$0x02, %bl		# bus-master error
	jnz	3f
	testb	$(ST_ERR | ST_DF), %al
	jnz	3f
	clc
	ret
3:	stc
	ret

# write_block: write BUF to slot %eax, then flush the disk's cache; CF set
# on an error.
write_block:
	movw	$(BLOCK_SECTORS << 8 | CMD_WRITEMULT), %bx
	call	ata_block_cmd
	call	ata_wait
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	testb	$ST_DRQ, %al
	jz	1f
	movw	$BUF, %si
	movw	$BLOCK_DWORDS, %cx
	movw	$ATA_DATA, %dx
	rep outsl
	call	ata_wait		# the write
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	outb_imm ATA_CMD, CMD_FLUSH
	call	ata_wait		# the flush
	testb	$(ST_ERR | ST_DF), %al
	jnz	1f
	clc
	ret
1:	stc
	ret

# checksum: eax = a, edx = b over the 1024 words of BUF (see the top).
# Clobbers cx, si.
checksum:
	xorl	%eax, %eax
	xorl	%edx, %edx
	movw	$BUF, %si
	movw	$BLOCK_DWORDS, %cx
1:	addl	(%si), %eax
	addl	%eax, %edx
	addw	$4, %si
	loop	1b
	ret

# build_block: block seq+1 in BUF.  Clobbers eax, ebx, ecx, edx, si, di.
build_block:
	movl	seq, %ebx
	incl	%ebx			# k
	movl	%ebx, %eax
	shll	$10, %eax
	xorl	boot_id, %eax		# word i = (k << 10) xor boot id xor i
	movw	$BUF, %di
	xorl	%ecx, %ecx
1:	movl	%eax, %edx
	xorl	%ecx, %edx
	movl	%edx, (%di)
	addw	$4, %di
	incl	%ecx
	cmpl	$BLOCK_DWORDS, %ecx
	jb	1b
	movl	$MAGIC0, BUF
	movl	$MAGIC1, BUF+4
	movl	%ebx, BUF+8
	movl	$0, BUF+12
	movl	boot_id, %eax
	movl	%eax, BUF+16
	movl	ring, %eax
	movl	%eax, BUF+20
	movl	$0, BUF+24
	movl	$0, BUF+28
	call	checksum
	movl	%eax, BUF+24
	movl	%edx, BUF+28
	ret

# valid_block: CF clear and eax = k if BUF holds a valid block (magic, k
# below 2^32, checksum); clobbers the checksum fields of BUF, ebx, ecx,
# edx, si.
valid_block:
	cmpl	$MAGIC0, BUF
	jne	1f
	cmpl	$MAGIC1, BUF+4
	jne	1f
	cmpl	$0, BUF+12
	jne	1f
	movl	BUF+24, %ebx
	pushl	BUF+28
	movl	$0, BUF+24
	movl	$0, BUF+28
	call	checksum
	popl	%ecx
	cmpl	%ebx, %eax
	jne	1f
	cmpl	%ecx, %edx
	jne	1f
	movl	BUF+8, %eax
	clc
	ret
1:	stc
	ret

# irq14: the disk's interrupt; reading its status acknowledges it.
irq14:
	pushw	%ax
	pushw	%dx
	movw	$ATA_CMD, %dx
	inb	%dx, %al
	movb	$PIC_EOI, %al
	outb	%al, $PIC2_CMD
	outb	%al, $PIC1_CMD
	popw	%dx
	popw	%ax
	iret

rtc_regs:	.byte	7, 4, 2, 0, 0xff	# day, hours, minutes, seconds
msg_id:		.asciz	"herd-guest id "
msg_ring:	.asciz	" ring "
msg_resume:	.asciz	"herd-guest resume "
msg_ack:	.asciz	"herd-guest ack "
msg_read_err:	.asciz	"herd-guest error read slot "
msg_write_err:	.asciz	"herd-guest error write block "
msg_status:	.asciz	" status "
msg_error_reg:	.asciz	" error "
msg_no_disk:	.asciz	"herd-guest error no data disk (primary IDE master)\r\n"
msg_no_dma:	.asciz	"herd-guest error no bus-master IDE at 00:01.1\r\n"
msg_too_small:	.asciz	"herd-guest error data disk smaller than 8 KiB\r\n"
msg_crlf:	.asciz	"\r\n"

	.balign	4
ticks:		.long	0		# timer ticks since boot
started:	.long	0		# ticks when the current block was started
boot_id:	.long	0
ring:		.long	0		# N: blocks in the ring
seq:		.long	0		# the last block acknowledged (or resumed)
slot:		.long	0		# the scan's slot
scan_count:	.word	0		# blocks in the scan's current read
scan_index:	.word	0		# the one being checked
bmiba:		.word	0		# the bus-master registers' I/O base
	.balign	8
prd:		.long	SCAN_SEG << 4	# one PRD: the buffer, byte count,
		.word	0, 0x8000	# the last entry
status:		.byte	0		# the disk's status at the last ata_wait
digits:		.skip	10		# 2^32 - 1 has 10 digits
digits_end:	.byte	0

	# as fails here ("attempt to move .org backwards") if the image is
	# larger than what the boot sector loads.
	.org	512 + LOAD_SECTORS * 512
	.if	BUF < 0x7c00 + 512 + LOAD_SECTORS * 512
	.error	"BUF overlaps the image"
	.endif

	.section .note.GNU-stack, "", @progbits
