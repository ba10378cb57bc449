;; PostgreSQL's data page checksum (pg_checksum_page, src/include/storage/checksum_impl.h) in
;; WebAssembly with 128-bit SIMD: the source of page-checksum-wasm.ts, which holds this module
;; assembled (`node scripts/assemble-wasm.js`; test/unit/page-checksum-wasm.test.ts fails when
;; the two differ). checksum.ts explains the algorithm and keeps the JavaScript version, which
;; this must agree with on every page.
;;
;; The page is rows of 32 little-endian uint32 words, and column j has its own running sum. Here
;; the 32 sums are eight vectors of four lanes ($s0 holds columns 0-3, $s1 columns 4-7, ...), so
;; a row is eight 16-byte loads and each step of the FNV-1a-like mix,
;;   t = sum ^ word;  sum = t * FNV_PRIME ^ (t >>> 17),
;; runs on four columns at once. WebAssembly is little-endian, as the page is.
;;
;; checksum(len, blkno): the checksum of the `len`-byte page the caller copied to offset 0 of
;; `memory` (len a positive multiple of 128, at most 32768), as block `blkno` of its fork.
(module
  ;; One 64 KiB page: room for the largest block size PostgreSQL builds with (32 KiB).
  (memory (export "memory") 1)

  (func (export "checksum") (param $len i32) (param $blkno i32) (result i32)
    (local $p i32)
    (local $t v128)
    (local $prime v128)
    ;; pd_checksum (the low half of word 2) counts as zero: ANDed out of the first row only.
    (local $mask v128)
    (local $rounds i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128)

    (local.set $prime (i32x4.splat (i32.const 16777619)))
    (local.set $mask (v128.const i32x4 0xffffffff 0xffffffff 0xffff0000 0xffffffff))
    ;; checksumBaseOffsets, four columns per vector.
    (local.set $s0 (v128.const i32x4 0x5b1f36e9 0xb8525960 0x02ab50aa 0x1de66d2a))
    (local.set $s1 (v128.const i32x4 0x79ff467a 0x9bb9f8a3 0x217e7cd2 0x83e13d2c))
    (local.set $s2 (v128.const i32x4 0xf8d4474f 0xe39eb970 0x42c6ae16 0x993216fa))
    (local.set $s3 (v128.const i32x4 0x7b093b5d 0x98daff3c 0xf718902a 0x0b1c9cdb))
    (local.set $s4 (v128.const i32x4 0xe58f764b 0x187636bc 0x5d7b3bb1 0xe73de7de))
    (local.set $s5 (v128.const i32x4 0x92bec979 0xcca6c0b2 0x304a0979 0x85aa43d4))
    (local.set $s6 (v128.const i32x4 0x783125bb 0x6ca8eaa2 0xe407eac6 0x4b5cfc3e))
    (local.set $s7 (v128.const i32x4 0x9fbf8c76 0x15ca20be 0xf2ca9fd3 0x959bd756))

    ;; Every row, in order. The mix is written out for each vector: Node 20's V8 does not inline
    ;; a function call here, and a call per step took the page from 0.5 to 1.9 microseconds.
    (loop $row
      (local.set $t (v128.xor (local.get $s0) (v128.and (v128.load offset=0 (local.get $p)) (local.get $mask))))
      (local.set $s0 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s1) (v128.load offset=16 (local.get $p))))
      (local.set $s1 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s2) (v128.load offset=32 (local.get $p))))
      (local.set $s2 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s3) (v128.load offset=48 (local.get $p))))
      (local.set $s3 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s4) (v128.load offset=64 (local.get $p))))
      (local.set $s4 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s5) (v128.load offset=80 (local.get $p))))
      (local.set $s5 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s6) (v128.load offset=96 (local.get $p))))
      (local.set $s6 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (v128.xor (local.get $s7) (v128.load offset=112 (local.get $p))))
      (local.set $s7 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $mask (v128.const i32x4 0xffffffff 0xffffffff 0xffffffff 0xffffffff))
      (local.set $p (i32.add (local.get $p) (i32.const 128)))
      (br_if $row (i32.lt_u (local.get $p) (local.get $len))))

    ;; Two rounds with zero words (t = sum) mix the last row into the low bits.
    (local.set $rounds (i32.const 2))
    (loop $round
      (local.set $t (local.get $s0))
      (local.set $s0 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s1))
      (local.set $s1 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s2))
      (local.set $s2 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s3))
      (local.set $s3 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s4))
      (local.set $s4 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s5))
      (local.set $s5 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s6))
      (local.set $s6 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $t (local.get $s7))
      (local.set $s7 (v128.xor (i32x4.mul (local.get $t) (local.get $prime)) (i32x4.shr_u (local.get $t) (i32.const 17))))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $round (local.get $rounds)))

    ;; The 32 sums XORed together, then the block number, reduced to 1..65535 (never 0).
    (local.set $t
      (v128.xor
        (v128.xor (v128.xor (local.get $s0) (local.get $s1)) (v128.xor (local.get $s2) (local.get $s3)))
        (v128.xor (v128.xor (local.get $s4) (local.get $s5)) (v128.xor (local.get $s6) (local.get $s7)))))
    (i32.add
      (i32.rem_u
        (i32.xor
          (local.get $blkno)
          (i32.xor
            (i32.xor (i32x4.extract_lane 0 (local.get $t)) (i32x4.extract_lane 1 (local.get $t)))
            (i32.xor (i32x4.extract_lane 2 (local.get $t)) (i32x4.extract_lane 3 (local.get $t)))))
        (i32.const 65535))
      (i32.const 1)))
)
