//! The Arrow C data interface, both ways, without the `arrow` crate.
//!
//! In: any object with `__arrow_c_stream__` (a Polars DataFrame or Series) is read
//! as named columns; a column held in one chunk is borrowed in place (no copy), one
//! spread over several chunks is gathered once. Out: an [`ArrowTable`] owns the
//! engine's vectors and exports them as one struct batch through
//! `__arrow_c_stream__`; `pl.DataFrame(table)` imports it without a copy, and the
//! release callbacks keep the vectors alive for as long as any consumer holds them.
//!
//! Spec: <https://arrow.apache.org/docs/format/CDataInterface.html> and
//! <https://arrow.apache.org/docs/format/CStreamInterface.html>.

use std::borrow::Cow;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

#[repr(C)]
pub struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct ArrowArrayStream {
    get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    private_data: *mut c_void,
}

const FLAG_NULLABLE: i64 = 2;

impl ArrowSchema {
    fn empty() -> Self {
        ArrowSchema {
            format: ptr::null(),
            name: ptr::null(),
            metadata: ptr::null(),
            flags: 0,
            n_children: 0,
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

impl ArrowArray {
    fn empty() -> Self {
        ArrowArray {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: ptr::null_mut(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

// ------------------------------------------------------------------------ import

/// The batches of one imported stream, released when this is dropped. Column
/// slices borrow from it.
pub struct Imported {
    schema: ArrowSchema,
    batches: Vec<ArrowArray>,
    /// (name, format) of each column; a non-struct stream is one column.
    fields: Vec<(String, String)>,
    is_struct: bool,
    what: &'static str,
}

impl Drop for Imported {
    fn drop(&mut self) {
        // SAFETY: each struct was produced by the exporter and not released yet
        // (release is set to None by whoever releases it).
        unsafe {
            for b in &mut self.batches {
                ArrowArray::release_in_place(b);
            }
            ArrowSchema::release_in_place(&mut self.schema);
        }
    }
}

// SAFETY: the imported buffers are immutable and owned by the exporter until
// release; Imported only hands out shared slices of them.
unsafe impl Send for Imported {}
unsafe impl Sync for Imported {}

unsafe fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Reads a Polars DataFrame or Series (`__arrow_c_stream__`, every batch) or any
/// object exporting one array (`__arrow_c_array__`); `what` names it in errors.
pub fn import(obj: &Bound<'_, PyAny>, what: &'static str) -> PyResult<Imported> {
    if obj.hasattr("__arrow_c_stream__")? {
        let capsule = obj.call_method0("__arrow_c_stream__")?;
        // SAFETY: `take` checks the capsule's name, so it holds a stream.
        let mut stream: ArrowArrayStream = unsafe { take(&capsule)? };
        let result = unsafe { read_stream(&mut stream, what) };
        // SAFETY: the stream was moved out of the capsule and is released once here;
        // the arrays it produced stay valid after its release (spec).
        unsafe { ArrowArrayStream::release_in_place(&mut stream) };
        return result;
    }
    if obj.hasattr("__arrow_c_array__")? {
        let (schema, array): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            obj.call_method0("__arrow_c_array__")?.extract()?;
        // SAFETY: `take` checks each capsule's name.
        let mut out = Imported::new(unsafe { take(&schema)? }, what);
        out.batches.push(unsafe { take(&array)? });
        unsafe { out.describe() };
        return Ok(out);
    }
    Err(PyTypeError::new_err(format!(
        "{what}: expected a Polars DataFrame or Series (an Arrow PyCapsule exporter), got {}",
        obj.get_type().name()?
    )))
}

/// Moves the struct out of a PyCapsule and marks the capsule's copy released, as
/// the PyCapsule protocol prescribes (its destructor then does nothing).
///
/// # Safety
/// A capsule named `T::CAPSULE` must hold a `T`.
unsafe fn take<T: Node>(capsule: &Bound<'_, PyAny>) -> PyResult<T> {
    let p = ffi::PyCapsule_GetPointer(capsule.as_ptr(), T::CAPSULE.as_ptr()) as *mut T;
    if p.is_null() {
        return Err(PyErr::fetch(capsule.py()));
    }
    let value = ptr::read(p);
    T::mark_released(p);
    Ok(value)
}

unsafe fn stream_error(stream: *mut ArrowArrayStream, code: c_int, what: &str) -> PyErr {
    let detail = match (*stream).get_last_error {
        Some(f) => c_text(f(stream)),
        None => String::new(),
    };
    PyValueError::new_err(format!("{what}: Arrow stream error {code} {detail}"))
}

unsafe fn read_stream(stream: &mut ArrowArrayStream, what: &'static str) -> PyResult<Imported> {
    let (Some(get_schema), Some(get_next)) = (stream.get_schema, stream.get_next) else {
        return Err(PyValueError::new_err(format!(
            "{what}: released Arrow stream"
        )));
    };
    let mut out = Imported::new(ArrowSchema::empty(), what);
    let rc = get_schema(stream, &mut out.schema);
    if rc != 0 {
        return Err(stream_error(stream, rc, what));
    }
    out.describe();
    loop {
        let mut batch = ArrowArray::empty();
        let rc = get_next(stream, &mut batch);
        if rc != 0 {
            return Err(stream_error(stream, rc, what));
        }
        if batch.release.is_none() {
            break;
        }
        out.batches.push(batch);
    }
    Ok(out)
}

/// Element types a column may be read as, with the Arrow formats that hold them.
pub trait Native: Copy + 'static {
    const NAME: &'static str;
    fn accepts(format: &str) -> bool;
}

impl Native for f64 {
    const NAME: &'static str = "float64";
    fn accepts(format: &str) -> bool {
        format == "g"
    }
}

impl Native for i64 {
    const NAME: &'static str = "int64 or timestamp[us]";
    fn accepts(format: &str) -> bool {
        // int64, timestamp[us] (any zone: the values are UTC), duration[us]
        format == "l" || format.starts_with("tsu:") || format == "tDu"
    }
}

impl Native for u8 {
    const NAME: &'static str = "uint8";
    fn accepts(format: &str) -> bool {
        format == "C"
    }
}

impl Imported {
    fn new(schema: ArrowSchema, what: &'static str) -> Self {
        Imported {
            schema,
            batches: Vec::new(),
            fields: Vec::new(),
            is_struct: false,
            what,
        }
    }

    /// Reads the column names and formats from the schema.
    ///
    /// # Safety
    /// `self.schema` is a valid, unreleased schema.
    unsafe fn describe(&mut self) {
        let format = c_text(self.schema.format);
        self.is_struct = format == "+s";
        if self.is_struct {
            for k in 0..self.schema.n_children as usize {
                let child = &**self.schema.children.add(k);
                self.fields.push((c_text(child.name), c_text(child.format)));
            }
        } else {
            self.fields.push((c_text(self.schema.name), format));
        }
    }

    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.length as usize).sum()
    }

    /// Column names, in order (one for a non-struct stream).
    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn first_name(&self) -> String {
        self.fields
            .first()
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// Where the values of fixed-width column `name` start when it lies in one
    /// chunk (what `column` would borrow); `None` when it would be gathered.
    pub fn address(&self, name: &str) -> PyResult<Option<usize>> {
        let (k, format) = self.position(name)?;
        let width = match format {
            "g" | "l" | "L" | "tDu" => 8,
            f if f.starts_with("ts") => 8,
            "i" | "I" | "f" => 4,
            "c" | "C" => 1,
            _ => return Ok(None),
        };
        let chunks: Vec<&ArrowArray> = (0..self.batches.len())
            .map(|b| self.array(b, k))
            .filter(|a| a.length > 0)
            .collect();
        Ok(match chunks.as_slice() {
            // SAFETY: buffer 1 holds the values of a fixed-width array.
            [a] => Some(unsafe { *a.buffers.add(1) } as usize + a.offset as usize * width),
            _ => None,
        })
    }

    /// The array of column `k` in batch `b`.
    fn array(&self, b: usize, k: usize) -> &ArrowArray {
        let batch = &self.batches[b];
        if self.is_struct {
            // SAFETY: a struct batch has one child per schema field.
            unsafe { &**batch.children.add(k) }
        } else {
            batch
        }
    }

    fn position(&self, name: &str) -> PyResult<(usize, &str)> {
        let k = if self.is_struct {
            self.fields.iter().position(|(n, _)| n == name)
        } else {
            Some(0)
        };
        k.map(|k| (k, self.fields[k].1.as_str()))
            .ok_or_else(|| PyValueError::new_err(format!("{}: no column {name:?}", self.what)))
    }

    /// Column `name` as a slice of `T`: borrowed when it lies in one chunk
    /// (the common case), gathered into a new vector when it spans several.
    /// Nulls are refused: the Python layer fills them with its sentinels first.
    pub fn column<T: Native>(&self, name: &str) -> PyResult<Cow<'_, [T]>> {
        let (k, format) = self.position(name)?;
        if !T::accepts(format) {
            return Err(PyTypeError::new_err(format!(
                "{}: column {name:?} must be {}, got Arrow format {format:?}",
                self.what,
                T::NAME
            )));
        }
        let mut parts: Vec<&[T]> = Vec::with_capacity(self.batches.len());
        for b in 0..self.batches.len() {
            let a = self.array(b, k);
            if a.null_count != 0 {
                return Err(PyValueError::new_err(format!(
                    "{}: column {name:?} holds nulls",
                    self.what
                )));
            }
            let n = a.length as usize;
            if n == 0 {
                continue;
            }
            // SAFETY: a primitive array has buffers [validity, values]; values holds
            // offset + length items of T (format checked above), kept alive by self.
            let slice = unsafe {
                let values = *a.buffers.add(1) as *const T;
                std::slice::from_raw_parts(values.add(a.offset as usize), n)
            };
            parts.push(slice);
        }
        Ok(match parts.len() {
            0 => Cow::Borrowed(&[]),
            1 => Cow::Borrowed(parts[0]),
            _ => Cow::Owned(parts.concat()),
        })
    }

    /// A 0/1 mask column: uint8 borrowed, or boolean (bit-packed) unpacked.
    pub fn mask(&self, name: &str) -> PyResult<Cow<'_, [u8]>> {
        let (k, format) = self.position(name)?;
        if format != "b" {
            return self.column::<u8>(name);
        }
        let mut out = Vec::with_capacity(self.len());
        for b in 0..self.batches.len() {
            let a = self.array(b, k);
            if a.null_count != 0 {
                return Err(PyValueError::new_err(format!(
                    "{}: column {name:?} holds nulls",
                    self.what
                )));
            }
            // SAFETY: a boolean array's values buffer holds offset + length bits.
            unsafe {
                let bits = *a.buffers.add(1) as *const u8;
                for i in a.offset as usize..(a.offset + a.length) as usize {
                    out.push((*bits.add(i / 8) >> (i % 8)) & 1);
                }
            }
        }
        Ok(Cow::Owned(out))
    }
}

// ------------------------------------------------------------------------ export

/// The values of one output column.
pub enum Values {
    I64(Vec<i64>),
    F64(Vec<f64>),
    I8(Vec<i8>),
}

impl Values {
    fn ptr(&self) -> *const c_void {
        match self {
            Values::I64(v) => v.as_ptr().cast(),
            Values::F64(v) => v.as_ptr().cast(),
            Values::I8(v) => v.as_ptr().cast(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::I64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I8(v) => v.len(),
        }
    }
}

/// Arrow logical types of the output columns.
#[derive(Clone, Copy)]
pub enum Kind {
    Int64,
    Float64,
    Int8,
    /// timestamp[us, UTC] over i64 values
    Timestamp,
    /// duration[us] over i64 values
    Duration,
}

impl Kind {
    fn format(self) -> &'static CStr {
        match self {
            Kind::Int64 => c"l",
            Kind::Float64 => c"g",
            Kind::Int8 => c"c",
            Kind::Timestamp => c"tsu:UTC",
            Kind::Duration => c"tDu",
        }
    }
}

pub struct OutColumn {
    name: CString,
    kind: Kind,
    values: Values,
    /// LSB-first validity bits, present when a value is null.
    validity: Option<Vec<u8>>,
    null_count: usize,
}

/// Builds output columns from rows; `None` marks a null.
pub struct TableBuilder {
    len: usize,
    columns: Vec<OutColumn>,
}

fn validity_of(valid: impl Iterator<Item = bool>, n: usize) -> (Option<Vec<u8>>, usize) {
    let mut bits = vec![0u8; n.div_ceil(8)];
    let mut nulls = 0;
    for (i, ok) in valid.enumerate() {
        if ok {
            bits[i / 8] |= 1 << (i % 8);
        } else {
            nulls += 1;
        }
    }
    if nulls == 0 {
        (None, 0)
    } else {
        (Some(bits), nulls)
    }
}

/// Values with `fill` in the null slots, and which slots are valid.
fn split_nulls<T: Copy>(values: Vec<Option<T>>, fill: T) -> (Vec<T>, Vec<bool>) {
    let valid = values.iter().map(Option::is_some).collect();
    (
        values.into_iter().map(|x| x.unwrap_or(fill)).collect(),
        valid,
    )
}

impl TableBuilder {
    pub fn new(len: usize) -> Self {
        TableBuilder {
            len,
            columns: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, kind: Kind, values: Values, valid: Option<Vec<bool>>) {
        debug_assert_eq!(values.len(), self.len);
        let (validity, null_count) = match valid {
            Some(v) => validity_of(v.into_iter(), self.len),
            None => (None, 0),
        };
        self.columns.push(OutColumn {
            name: CString::new(name).unwrap_or_default(),
            kind,
            values,
            validity,
            null_count,
        });
    }

    pub fn f64(&mut self, name: &str, values: Vec<f64>) -> &mut Self {
        self.push(name, Kind::Float64, Values::F64(values), None);
        self
    }

    pub fn i64(&mut self, name: &str, values: Vec<i64>) -> &mut Self {
        self.push(name, Kind::Int64, Values::I64(values), None);
        self
    }

    pub fn ts(&mut self, name: &str, values: Vec<i64>) -> &mut Self {
        self.push(name, Kind::Timestamp, Values::I64(values), None);
        self
    }

    pub fn opt_ts(&mut self, name: &str, values: Vec<Option<i64>>) -> &mut Self {
        let (v, valid) = split_nulls(values, 0);
        self.push(name, Kind::Timestamp, Values::I64(v), Some(valid));
        self
    }

    pub fn opt_f64(&mut self, name: &str, values: Vec<Option<f64>>) -> &mut Self {
        let (v, valid) = split_nulls(values, f64::NAN);
        self.push(name, Kind::Float64, Values::F64(v), Some(valid));
        self
    }

    pub fn opt_i64(&mut self, name: &str, values: Vec<Option<i64>>) -> &mut Self {
        let (v, valid) = split_nulls(values, 0);
        self.push(name, Kind::Int64, Values::I64(v), Some(valid));
        self
    }

    pub fn duration(&mut self, name: &str, values: Vec<Option<i64>>) -> &mut Self {
        let (v, valid) = split_nulls(values, 0);
        self.push(name, Kind::Duration, Values::I64(v), Some(valid));
        self
    }

    pub fn i8(&mut self, name: &str, values: Vec<i8>) -> &mut Self {
        self.push(name, Kind::Int8, Values::I8(values), None);
        self
    }

    pub fn opt_i8(&mut self, name: &str, values: Vec<Option<i8>>) -> &mut Self {
        let (v, valid) = split_nulls(values, 0);
        self.push(name, Kind::Int8, Values::I8(v), Some(valid));
        self
    }

    pub fn finish(self) -> OutTable {
        OutTable {
            len: self.len,
            columns: self.columns,
        }
    }
}

/// Finished output columns of equal length.
pub struct OutTable {
    len: usize,
    columns: Vec<OutColumn>,
}

/// An engine output table handed to Python: `pl.DataFrame(table)` imports it
/// through the Arrow C stream interface without copying the values, which stay
/// owned by Rust until the last consumer releases them.
#[pyclass(frozen, module = "aftershock._engine")]
pub struct ArrowTable {
    table: Arc<OutTable>,
}

impl ArrowTable {
    pub fn new(table: OutTable) -> Self {
        ArrowTable {
            table: Arc::new(table),
        }
    }
}

#[pymethods]
impl ArrowTable {
    /// Exports the table as a stream of one struct batch (PyCapsule protocol).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = requested_schema; // the table has one schema; consumers cast if they must
        let stream = ArrowArrayStream {
            get_schema: Some(stream_get_schema),
            get_next: Some(stream_get_next),
            get_last_error: Some(stream_last_error),
            release: Some(stream_release),
            private_data: Box::into_raw(Box::new(StreamPrivate {
                table: Arc::clone(&self.table),
                done: false,
            }))
            .cast(),
        };
        capsule(py, stream)
    }

    /// Exports the table as one struct array: ``(schema capsule, array capsule)``.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let _ = requested_schema;
        Ok((
            capsule(py, table_schema(&self.table))?,
            capsule(py, table_array(&self.table))?,
        ))
    }

    fn __len__(&self) -> usize {
        self.table.len
    }

    /// Column names, in order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.table
            .columns
            .iter()
            .map(|c| c.name.to_string_lossy().into_owned())
            .collect()
    }

    /// Address of a column's values in Rust memory (to check that an import shares it).
    fn buffer_address(&self, name: &str) -> PyResult<usize> {
        self.table
            .columns
            .iter()
            .find(|c| c.name.to_bytes() == name.as_bytes())
            .map(|c| c.values.ptr() as usize)
            .ok_or_else(|| PyValueError::new_err(format!("no column {name:?}")))
    }
}

struct StreamPrivate {
    table: Arc<OutTable>,
    done: bool,
}

unsafe extern "C" fn stream_get_schema(s: *mut ArrowArrayStream, out: *mut ArrowSchema) -> c_int {
    let private = &*((*s).private_data as *const StreamPrivate);
    ptr::write(out, table_schema(&private.table));
    0
}

unsafe extern "C" fn stream_get_next(s: *mut ArrowArrayStream, out: *mut ArrowArray) -> c_int {
    let private = &mut *((*s).private_data as *mut StreamPrivate);
    if private.done {
        ptr::write(out, ArrowArray::empty());
    } else {
        private.done = true;
        ptr::write(out, table_array(&private.table));
    }
    0
}

unsafe extern "C" fn stream_last_error(_: *mut ArrowArrayStream) -> *const c_char {
    ptr::null()
}

unsafe extern "C" fn stream_release(s: *mut ArrowArrayStream) {
    if (*s).release.is_none() {
        return;
    }
    drop(Box::from_raw((*s).private_data as *mut StreamPrivate));
    (*s).private_data = ptr::null_mut();
    (*s).release = None;
}

/// The schema and array structs both carry a release callback and own their
/// children the same way.
trait Node: Sized {
    /// The PyCapsule name of this struct.
    const CAPSULE: &'static CStr;
    /// # Safety
    /// `p` points at a valid node.
    unsafe fn release_in_place(p: *mut Self);
    /// # Safety
    /// `p` points at a valid node whose contents were moved out.
    unsafe fn mark_released(p: *mut Self);
}

macro_rules! node {
    ($ty:ty, $name:literal) => {
        impl Node for $ty {
            const CAPSULE: &'static CStr = $name;
            unsafe fn release_in_place(p: *mut Self) {
                if let Some(release) = (*p).release {
                    release(p);
                }
            }
            unsafe fn mark_released(p: *mut Self) {
                (*p).release = None;
            }
        }
    };
}

node!(ArrowSchema, c"arrow_schema");
node!(ArrowArray, c"arrow_array");
node!(ArrowArrayStream, c"arrow_array_stream");

/// A capsule owning `value` (PyCapsule protocol): its destructor releases the
/// struct unless a consumer moved it out, then frees it.
fn capsule<'py, T: Node>(py: Python<'py>, value: T) -> PyResult<Bound<'py, PyAny>> {
    let raw = Box::into_raw(Box::new(value));
    // SAFETY: the capsule takes ownership of the box; `drop_capsule::<T>` frees it.
    unsafe {
        let cap = ffi::PyCapsule_New(raw.cast(), T::CAPSULE.as_ptr(), Some(drop_capsule::<T>));
        if cap.is_null() {
            T::release_in_place(raw);
            drop(Box::from_raw(raw));
        }
        Bound::from_owned_ptr_or_err(py, cap)
    }
}

unsafe extern "C" fn drop_capsule<T: Node>(cap: *mut ffi::PyObject) {
    let raw = ffi::PyCapsule_GetPointer(cap, T::CAPSULE.as_ptr()) as *mut T;
    if raw.is_null() {
        ffi::PyErr_Clear();
        return;
    }
    T::release_in_place(raw);
    drop(Box::from_raw(raw));
}

/// Releases each child not already moved out by a consumer (who marks it
/// released) and frees its box.
unsafe fn free_children<T: Node>(children: &[*mut T]) {
    for &child in children {
        T::release_in_place(child);
        drop(Box::from_raw(child));
    }
}

fn children_ptr<T>(children: &mut [*mut T]) -> *mut *mut T {
    if children.is_empty() {
        ptr::null_mut()
    } else {
        children.as_mut_ptr()
    }
}

/// Owns what a schema node points to.
struct SchemaPrivate {
    name: CString,
    children: Vec<*mut ArrowSchema>,
}

fn schema_node(
    format: &'static CStr,
    name: CString,
    flags: i64,
    children: Vec<*mut ArrowSchema>,
) -> ArrowSchema {
    let mut private = Box::new(SchemaPrivate { name, children });
    ArrowSchema {
        format: format.as_ptr(),
        name: private.name.as_ptr(),
        metadata: ptr::null(),
        flags,
        n_children: private.children.len() as i64,
        children: children_ptr(&mut private.children),
        dictionary: ptr::null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private).cast(),
    }
}

unsafe extern "C" fn release_schema(s: *mut ArrowSchema) {
    if s.is_null() || (*s).release.is_none() {
        return;
    }
    let private = Box::from_raw((*s).private_data as *mut SchemaPrivate);
    free_children(&private.children);
    (*s).private_data = ptr::null_mut();
    (*s).release = None;
}

fn table_schema(table: &OutTable) -> ArrowSchema {
    let children = table
        .columns
        .iter()
        .map(|c| {
            Box::into_raw(Box::new(schema_node(
                c.kind.format(),
                c.name.clone(),
                FLAG_NULLABLE,
                vec![],
            )))
        })
        .collect();
    schema_node(c"+s", CString::default(), 0, children)
}

/// Owns what an array node points to; holds the table so its vectors outlive
/// every consumer of the exported buffers.
struct ArrayPrivate {
    _table: Arc<OutTable>,
    buffers: Vec<*const c_void>,
    children: Vec<*mut ArrowArray>,
}

fn array_node(
    table: &Arc<OutTable>,
    length: usize,
    null_count: usize,
    buffers: Vec<*const c_void>,
    children: Vec<*mut ArrowArray>,
) -> ArrowArray {
    let mut private = Box::new(ArrayPrivate {
        _table: Arc::clone(table),
        buffers,
        children,
    });
    ArrowArray {
        length: length as i64,
        null_count: null_count as i64,
        offset: 0,
        n_buffers: private.buffers.len() as i64,
        n_children: private.children.len() as i64,
        buffers: private.buffers.as_mut_ptr(),
        children: children_ptr(&mut private.children),
        dictionary: ptr::null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private).cast(),
    }
}

unsafe extern "C" fn release_array(a: *mut ArrowArray) {
    if a.is_null() || (*a).release.is_none() {
        return;
    }
    let private = Box::from_raw((*a).private_data as *mut ArrayPrivate);
    free_children(&private.children);
    (*a).private_data = ptr::null_mut();
    (*a).release = None;
}

fn table_array(table: &Arc<OutTable>) -> ArrowArray {
    let children = table
        .columns
        .iter()
        .map(|c| {
            let validity = c
                .validity
                .as_ref()
                .map_or(ptr::null(), |v| v.as_ptr().cast::<c_void>());
            let node = array_node(
                table,
                table.len,
                c.null_count,
                vec![validity, c.values.ptr()],
                vec![],
            );
            Box::into_raw(Box::new(node))
        })
        .collect();
    array_node(table, table.len, 0, vec![ptr::null()], children)
}
