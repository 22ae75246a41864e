/**
 * Decoding and encoding against register images written by hand. Every offset below was read from
 * the model JSON files (running sum of point sizes, ID at 0, L at 1), not computed by the code
 * under test.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadDataError, NotSupportedError } from '../errors.js';
import { decodeModel, decodeModelPrefix, encodePoint, isAllowedLength, type DecodedGroup } from './codec.js';
import { asciiRegisters, float32Registers } from './fake-unit.js';
import { getModelDef, KNOWN_MODEL_IDS } from './models/index.js';

const U = 0xffff; // unimplemented uint16 / enum16
const S = 0x8000; // unimplemented int16 / sunssf
const neg = (v: number) => v & 0xffff; // an int16 as its register

/** Model 103 (three-phase inverter), L = 50, 52 registers. */
function model103(): number[] {
  const r = new Array<number>(52).fill(0);
  r[0] = 103;
  r[1] = 50;
  r[2] = 1234; // A
  r[3] = 411; // AphA
  r[4] = U; // AphB: unimplemented
  r[5] = 412; // AphC
  r[6] = neg(-2); // A_SF
  r[7] = U; // PPVphAB
  r[8] = U; // PPVphBC
  r[9] = U; // PPVphCA
  r[10] = 2301; // PhVphA
  r[11] = 2302; // PhVphB
  r[12] = 2303; // PhVphC
  r[13] = 0xffff; // V_SF = -1 (0xFFFF is -1 for an int16 scale factor, not "unimplemented")
  r[14] = neg(-100); // W
  r[15] = 1; // W_SF
  r[16] = 5002; // Hz
  r[17] = neg(-2); // Hz_SF
  r[18] = S; // VA: unimplemented
  r[19] = 0; // VA_SF
  r[20] = 100; // VAr
  r[21] = S; // VAr_SF unimplemented -> VAr absent
  r[22] = neg(-950); // PF
  r[23] = neg(-1); // PF_SF
  r[24] = 0x0001; // WH (acc32) high word
  r[25] = 0x86a0; // WH low word: 100000
  r[26] = 0; // WH_SF
  r[27] = U; // DCA
  r[28] = S; // DCA_SF
  r[29] = 4000; // DCV
  r[30] = neg(-1); // DCV_SF
  r[31] = S; // DCW
  r[32] = 0; // DCW_SF
  r[33] = neg(-10); // TmpCab
  r[34] = S;
  r[35] = S;
  r[36] = S;
  r[37] = 0; // Tmp_SF
  r[38] = 4; // St = MPPT
  r[39] = U; // StVnd
  r[40] = 0; // Evt1 (bitfield32) = 0
  r[41] = 0;
  r[42] = 0; // Evt2 = 4
  r[43] = 4;
  for (let i = 44; i < 52; i++) r[i] = U; // EvtVnd1..4 unimplemented
  return r;
}

describe('model definitions', () => {
  it('loads and validates every bundled model', () => {
    expect(KNOWN_MODEL_IDS).toContain(1);
    expect(KNOWN_MODEL_IDS).toContain(802);
    for (const id of KNOWN_MODEL_IDS) expect(getModelDef(id).id).toBe(id);
  });

  it('computes offsets as the running sum of sizes from ID and L', () => {
    const m103 = getModelDef(103);
    expect(m103.points.get('ID')!.offset).toBe(0);
    expect(m103.points.get('L')!.offset).toBe(1);
    expect(m103.points.get('W')!.offset).toBe(14);
    expect(m103.points.get('WH')!.offset).toBe(24);
    expect(m103.fixedPointsSize).toBe(52);
    expect(getModelDef(203).points.get('TotWhImp')!.offset).toBe(46);
    expect(getModelDef(1).points.get('SN')!.offset).toBe(50);
    expect(getModelDef(704).points.get('WSetRvrtTms')!.offset).toBe(31);
    expect(getModelDef(802).points.get('SoC')!.offset).toBe(11);
  });
});

describe('decodeModel', () => {
  it('applies scale factors, including negative values and negative scale factors', () => {
    const d = decodeModel(getModelDef(103), model103(), { address: 40070 });
    expect(d.id).toBe(103);
    expect(d.length).toBe(50);
    expect(d.address).toBe(40070);
    expect(d.values['A']).toBe(12.34);
    expect(d.values['AphA']).toBe(4.11);
    expect(d.values['PhVphA']).toBe(230.1);
    expect(d.values['W']).toBe(-1000);
    expect(d.values['Hz']).toBe(50.02);
    expect(d.values['PF']).toBe(-95);
    expect(d.values['WH']).toBe(100000);
    expect(d.values['DCV']).toBe(400);
    expect(d.values['TmpCab']).toBe(-10);
    expect(d.values['St']).toBe(4);
    expect(d.values['Evt1']).toBe(0);
    expect(d.values['Evt2']).toBe(4);
    expect(d.values['W_SF']).toBe(1);
    expect(d.values['V_SF']).toBe(-1);
  });

  it('returns unimplemented values, and values with an unimplemented scale factor, as undefined', () => {
    const d = decodeModel(getModelDef(103), model103());
    for (const name of ['AphB', 'PPVphAB', 'VA', 'VAr', 'DCA', 'DCW', 'TmpSnk', 'StVnd', 'EvtVnd1', 'DCA_SF']) {
      expect(d.values[name], name).toBeUndefined();
    }
    expect('AphB' in d.values).toBe(true);
  });

  it('treats a zero accumulator as not accumulated', () => {
    const r = model103();
    r[24] = 0;
    r[25] = 0;
    expect(decodeModel(getModelDef(103), r).values['WH']).toBeUndefined();
  });

  it('decodes strings and leaves all-zero strings absent (common model, with and without its pad)', () => {
    const r = new Array<number>(68).fill(0);
    r[0] = 1;
    r[1] = 66;
    r.splice(2, 16, ...asciiRegisters('Fronius', 16)); // Mn at 2
    r.splice(18, 16, ...asciiRegisters('Symo 8.2-3-M', 16)); // Md at 18
    // Opt at 34 (8 registers) stays all zero
    r.splice(42, 8, ...asciiRegisters('1.2.3 ', 8)); // Vr at 42
    r.splice(50, 16, ...asciiRegisters('SN-0042', 16)); // SN at 50
    r[66] = 1; // DA
    const d = decodeModel(getModelDef(1), r);
    expect(d.values).toMatchObject({ Mn: 'Fronius', Md: 'Symo 8.2-3-M', Vr: '1.2.3', SN: 'SN-0042', DA: 1 });
    expect(d.values['Opt']).toBeUndefined();
    expect('Pad' in d.values).toBe(false);
    // Many devices still have the older common model without the pad: L = 65.
    const old = r.slice(0, 67);
    old[1] = 65;
    expect(decodeModel(getModelDef(1), old).values['SN']).toBe('SN-0042');
  });

  it('decodes float models and treats NaN as unimplemented', () => {
    const r = new Array<number>(62).fill(0);
    r[0] = 113;
    r[1] = 60;
    r.splice(22, 2, ...float32Registers(1234.5)); // W at 22
    r.splice(24, 2, ...float32Registers(50)); // Hz at 24
    r.splice(32, 2, 0x7fc0, 0x0000); // WH at 32: NaN
    r.splice(40, 2, ...float32Registers(-5.25)); // TmpCab at 40
    r.splice(42, 2, 0x7f80, 0x0000); // TmpSnk: +Infinity is no value either
    const d = decodeModel(getModelDef(113), r);
    expect(d.values['W']).toBe(1234.5);
    expect(d.values['Hz']).toBe(50);
    expect(d.values['TmpCab']).toBe(-5.25);
    expect(d.values['WH']).toBeUndefined();
    expect(d.values['TmpSnk']).toBeUndefined();
  });

  it('decodes 32- and 64-bit integers with their scale factors (model 701)', () => {
    const r = new Array<number>(155).fill(0);
    r[0] = 701;
    r[1] = 153;
    r[10] = neg(-1500); // W
    r.splice(17, 2, 0x0000, 0xc35a); // Hz (uint32) = 50010
    r.splice(19, 4, 0, 0x0001, 0x0000, 0x0000); // TotWhInj (uint64) = 2^32
    r.splice(23, 4, 0xffff, 0xffff, 0xffff, 0xffff); // TotWhAbs unimplemented
    r[116] = 0; // W_SF
    r[115] = neg(-3); // Hz_SF
    r[120] = 1; // TotWh_SF
    const d = decodeModel(getModelDef(701), r);
    expect(d.values['W']).toBe(-1500);
    expect(d.values['Hz']).toBe(50.01);
    expect(d.values['TotWhInj']).toBe(42949672960);
    expect(d.values['TotWhAbs']).toBeUndefined();
    expect(d.values['MnAlrmInfo']).toBeUndefined();
  });

  it('rejects a model whose length is not what its definition allows, naming model and address', () => {
    const def = getModelDef(103);
    const short = model103().slice(0, 50);
    short[1] = 48;
    expect(() => decodeModel(def, short, { address: 40070 })).toThrow(BadDataError);
    expect(() => decodeModel(def, short, { address: 40070 })).toThrow(/model 103 at address 40070.*L=48/);
    // L disagreeing with the registers given
    const r = model103();
    r[1] = 51;
    expect(() => decodeModel(def, r, { address: 40070 })).toThrow(/L=51 but 50 registers/);
    // not this model at all
    const other = model103();
    other[0] = 101;
    expect(() => decodeModel(def, other)).toThrow(/ID register reads 101, expected 103/);
  });

  it('derives the count of a repeating group from L (model 160)', () => {
    // fixed part: 10 registers (ID..TmsPer); one module: 20 registers (ID at +0, IDStr +1, DCA +9,
    // DCV +10, DCW +11, DCWH +12..13, Tms +14..15, Tmp +16, DCSt +17, DCEvt +18..19).
    const r = new Array<number>(50).fill(0);
    r[0] = 160;
    r[1] = 48;
    r[2] = neg(-1); // DCA_SF
    r[3] = 0; // DCV_SF
    r[4] = 1; // DCW_SF
    r[5] = 0; // DCWH_SF
    r[8] = 2; // N
    r[10] = 1; // module[0].ID
    r.splice(11, 8, ...asciiRegisters('String A', 8));
    r[19] = 55; // module[0].DCA -> 5.5
    r[20] = 610; // DCV
    r[21] = 336; // DCW -> 3360
    r.splice(22, 2, 0, 12345); // DCWH
    r[30] = 2; // module[1].ID
    r[39] = U; // module[1].DCA unimplemented
    r[40] = 598;
    const d = decodeModel(getModelDef(160), r);
    const modules = d.groups['module'] as readonly DecodedGroup[];
    expect(modules).toHaveLength(2);
    expect(modules[0]!.values).toMatchObject({ ID: 1, IDStr: 'String A', DCA: 5.5, DCV: 610, DCW: 3360, DCWH: 12345 });
    expect(modules[1]!.values['ID']).toBe(2);
    expect(modules[1]!.values['DCA']).toBeUndefined();
    expect(modules[1]!.values['DCV']).toBe(598);
    // 28 + 20 * n only
    expect(isAllowedLength(getModelDef(160), 28)).toBe(true);
    expect(isAllowedLength(getModelDef(160), 68)).toBe(true);
    expect(isAllowedLength(getModelDef(160), 58)).toBe(false);
    const bad = r.slice(0, 45);
    bad[1] = 43;
    expect(() => decodeModel(getModelDef(160), bad)).toThrow(BadDataError);
  });

  it('decodes nested repeating groups counted by points, scaled by the parent group (model 705)', () => {
    // Top level 15 registers; NPt at 5, NCrv at 6, V_SF at 12, DeptRef_SF at 13, RspTms_SF at 14.
    // One curve: 10 registers (ActPt +0 ... RspTms +7..8, ReadOnly +9) then NPt points of 2 (V, Var).
    const r = new Array<number>(43).fill(0);
    r[0] = 705;
    r[1] = 41; // 15 + 2 curves * (10 + 2 points * 2) - 2
    r[2] = 1; // Ena
    r[5] = 2; // NPt
    r[6] = 2; // NCrv
    r[12] = neg(-1); // V_SF
    r[13] = neg(-2); // DeptRef_SF
    r[14] = 0; // RspTms_SF
    r[15] = 2; // Crv[0].ActPt
    r.splice(22, 2, 0, 10); // Crv[0].RspTms
    r[25] = 920; // Crv[0].Pt[0].V -> 92
    r[26] = 3000; // Crv[0].Pt[0].Var -> 30
    r[27] = 1080; // Crv[0].Pt[1].V
    r[28] = neg(-3000); // Crv[0].Pt[1].Var -> -30
    r[29] = 2; // Crv[1].ActPt
    r[41] = 1100; // Crv[1].Pt[1].V
    r[42] = neg(-1234); // Crv[1].Pt[1].Var
    const d = decodeModel(getModelDef(705), r);
    const curves = d.groups['Crv'] as readonly DecodedGroup[];
    expect(curves).toHaveLength(2);
    expect(curves[0]!.values['RspTms']).toBe(10);
    const pts0 = curves[0]!.groups['Pt'] as readonly DecodedGroup[];
    expect(pts0.map((p) => p.values)).toEqual([
      { V: 92, Var: 30 },
      { V: 108, Var: -30 },
    ]);
    const pts1 = curves[1]!.groups['Pt'] as readonly DecodedGroup[];
    expect(pts1[1]!.values).toEqual({ V: 110, Var: -12.34 });
    expect(isAllowedLength(getModelDef(705), 41)).toBeUndefined();
    // A count that does not fit L
    const wrong = [...r];
    wrong[6] = 3;
    expect(() => decodeModel(getModelDef(705), wrong)).toThrow(BadDataError);
    const unimpl = [...r];
    unimpl[5] = U;
    expect(() => decodeModel(getModelDef(705), unimpl)).toThrow(/count point NPt/);
  });

  it('decodes sync groups as single objects (model 704)', () => {
    const r = new Array<number>(67).fill(0);
    r[0] = 704;
    r[1] = 65;
    r[53] = neg(-3); // PF_SF
    r.splice(24, 2, 0xffff, 0xf63c); // WSet (int32) = -2500
    r[55] = 0; // WSet_SF
    r[59] = 950; // PFWInj.PF -> 0.95
    r[60] = 1; // PFWInj.Ext
    r[61] = U; // PFWInjRvrt.PF unimplemented
    const d = decodeModel(getModelDef(704), r);
    expect(d.values['WSet']).toBe(-2500);
    expect((d.groups['PFWInj'] as DecodedGroup).values).toEqual({ PF: 0.95, Ext: 1 });
    expect((d.groups['PFWInjRvrt'] as DecodedGroup).values['PF']).toBeUndefined();
  });

  it('decodes the prefix of a model a poll read', () => {
    const prefix = model103().slice(0, 27); // up to WH_SF
    const v = decodeModelPrefix(getModelDef(103), prefix);
    expect(v['W']).toBe(-1000);
    expect(v['WH']).toBe(100000);
    expect('TmpCab' in v).toBe(false);
  });
});

describe('encodePoint', () => {
  const def123 = getModelDef(123);

  it('encodes a scaled value at the point address', () => {
    // WMaxLimPct at offset 5 with WMaxLimPct_SF -1
    expect(encodePoint(def123, 'WMaxLimPct', 55.5, { WMaxLimPct_SF: -1 }, 40182)).toEqual({ address: 40187, registers: [555] });
    expect(encodePoint(def123, 'WMaxLimPct_RvrtTms', 60, {}, 40182)).toEqual({ address: 40189, registers: [60] });
    expect(encodePoint(def123, 'WMaxLim_Ena', 1, {}, 40182)).toEqual({ address: 40191, registers: [1] });
  });

  it('encodes negative int16 and int32 values as two\'s complement', () => {
    // 124 InWRte (int16, offset 13, InOutWRte_SF); 704 WSet (int32, offset 24, WSet_SF)
    expect(encodePoint(getModelDef(124), 'InWRte', -50, { InOutWRte_SF: -2 })).toEqual({ address: 13, registers: [neg(-5000)] });
    expect(encodePoint(getModelDef(704), 'WSet', -2500, { WSet_SF: 0 }, 1000)).toEqual({ address: 1024, registers: [0xffff, 0xf63c] });
    expect(encodePoint(getModelDef(704), 'WSetRvrtTms', 70000, {})).toEqual({ address: 31, registers: [1, 4464] });
  });

  it('round-trips through the decoder', () => {
    const r = new Array<number>(26).fill(0);
    r[0] = 123;
    r[1] = 24;
    r[23] = neg(-2); // WMaxLimPct_SF
    const e = encodePoint(def123, 'WMaxLimPct', 12.34, { WMaxLimPct_SF: -2 });
    r.splice(e.address, e.registers.length, ...e.registers);
    expect(decodeModel(def123, r).values['WMaxLimPct']).toBe(12.34);
  });

  it('refuses read-only and unknown points', () => {
    expect(() => encodePoint(getModelDef(103), 'W', 100, { W_SF: 0 })).toThrow(NotSupportedError);
    expect(() => encodePoint(getModelDef(103), 'W', 100, { W_SF: 0 })).toThrow(/read-only/);
    expect(() => encodePoint(def123, 'NoSuchPoint', 1)).toThrow(NotSupportedError);
  });

  it('refuses out-of-range values, bad enums and unknown scale factors with a clear error', () => {
    expect(() => encodePoint(def123, 'WMaxLimPct', 700, { WMaxLimPct_SF: -2 })).toThrow(RangeError);
    expect(() => encodePoint(def123, 'WMaxLimPct', 700, { WMaxLimPct_SF: -2 })).toThrow(/WMaxLimPct of SunSpec model 123: 700 % WMax is out of range \(0\.\.655\.34/);
    expect(() => encodePoint(def123, 'WMaxLimPct', -1, { WMaxLimPct_SF: 0 })).toThrow(RangeError);
    expect(() => encodePoint(def123, 'WMaxLimPct', Number.NaN, { WMaxLimPct_SF: 0 })).toThrow(RangeError);
    expect(() => encodePoint(def123, 'WMaxLim_Ena', 2)).toThrow(/not one of 0 \(DISABLED\), 1 \(ENABLED\)/);
    expect(() => encodePoint(def123, 'WMaxLimPct', 50, {})).toThrow(BadDataError);
    expect(() => encodePoint(def123, 'WMaxLimPct', 50, { WMaxLimPct_SF: undefined })).toThrow(/scale factor WMaxLimPct_SF/);
    // 0xFFFF is "unimplemented" for uint16, so it cannot be written as a value
    expect(() => encodePoint(def123, 'WMaxLimPct_RvrtTms', 65535)).toThrow(RangeError);
  });
});

function collectNumbers(g: DecodedGroup, out: number[]): number[] {
  for (const v of Object.values(g.values)) if (typeof v === 'number') out.push(v);
  for (const sub of Object.values(g.groups)) {
    for (const inst of Array.isArray(sub) ? (sub as readonly DecodedGroup[]) : [sub as DecodedGroup]) collectNumbers(inst, out);
  }
  return out;
}

describe('decodeModel on random registers (property)', () => {
  const word = fc.integer({ min: 0, max: 0xffff });

  it('never throws for a model of its defined length, and never returns NaN or Infinity', () => {
    const sized = KNOWN_MODEL_IDS.filter((id) => isAllowedLength(getModelDef(id), getModelDef(id).fixedPointsSize - 2) === true);
    expect(sized.length).toBeGreaterThan(20);
    fc.assert(
      fc.property(fc.constantFrom(...sized), fc.array(word, { minLength: 200, maxLength: 200 }), (id, words) => {
        const def = getModelDef(id);
        const n = def.fixedPointsSize;
        const regs = [id, n - 2, ...words.slice(0, n - 2)];
        while (regs.length < n) regs.push(0);
        const d = decodeModel(def, regs);
        for (const v of collectNumbers(d, [])) expect(Number.isFinite(v)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('throws nothing but BadDataError for any contents and length', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KNOWN_MODEL_IDS), fc.array(word, { maxLength: 300 }), fc.boolean(), (id, words, consistentHeader) => {
        const def = getModelDef(id);
        const regs = consistentHeader ? [id, words.length, ...words] : words;
        try {
          const d = decodeModel(def, regs);
          for (const v of collectNumbers(d, [])) expect(Number.isFinite(v)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(BadDataError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes models with repeating groups for any counts that fit', () => {
    // 705: top level 15, a curve 10 + NPt * 2.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 6 }), fc.array(word, { minLength: 120, maxLength: 120 }), (nCrv, nPt, words) => {
        const total = 15 + nCrv * (10 + nPt * 2);
        const regs = [705, total - 2, ...words.slice(0, total - 2)];
        regs[5] = nPt;
        regs[6] = nCrv;
        const d = decodeModel(getModelDef(705), regs);
        expect((d.groups['Crv'] as readonly DecodedGroup[]).length).toBe(nCrv);
        for (const v of collectNumbers(d, [])) expect(Number.isFinite(v)).toBe(true);
      }),
    );
  });
});
